package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"otrdesk.im/otrdesk/admin"
	"otrdesk.im/otrdesk/component"
	"otrdesk.im/otrdesk/omemo/wire"
)

// OMEMO devices of operators: which ones a skin trusts (keys add-device,
// keys revoke-device) and which ones an operator's account has (operator
// devices, read by serve over XMPP as the skin).

const operatorUsage = `usage: otrdesk operator devices JID    list the OMEMO devices of an operator's account and their fingerprints (serve must run)`

func cmdOperator(c *cli, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(c.stderr, operatorUsage)
		if len(args) == 0 {
			return usagef("name a subcommand: devices")
		}
		return flag.ErrHelp
	}
	sub, args := pickSubcommand(args, "devices")
	if sub != "devices" {
		return usagef("unknown subcommand %q: use devices", sub)
	}
	return operatorDevices(c, args)
}

func operatorDevices(c *cli, args []string) error {
	fs, cfgPath := c.newFlags("operator devices")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("operator devices takes one operator JID, e.g. otrdesk operator devices alice@example.org")
	}
	_, svc, done, err := openServiceFlag(*cfgPath)
	if err != nil {
		return err
	}
	defer done()
	devs, err := svc.ListDevices(pos[0])
	if errors.Is(err, admin.ErrNeedsServe) {
		return errors.New("otrdesk serve is not running: start it, then run this again (serve reads the devices over XMPP as the skin, which the operator has accepted)")
	}
	if err != nil {
		return err
	}
	if len(devs) == 0 {
		fmt.Fprintf(c.stdout, "%s publishes no OMEMO device\n", pos[0])
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tFINGERPRINT\tTRUSTED BY")
	for _, d := range devs {
		fp := "(no bundle: the device cannot be used)"
		if d.Fingerprint != "" {
			if f, err := wire.ParseFingerprint(d.Fingerprint); err == nil {
				fp = f.String()
			}
		}
		trusted := "-"
		if len(d.TrustedBy) > 0 {
			trusted = strings.Join(d.TrustedBy, ", ")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", d.Device, fp, trusted)
	}
	return tw.Flush()
}

// deviceFlags are the flags add-device and revoke-device share.
func deviceFlags(c *cli, name string, args []string, withFingerprint bool) (cfgPath string, d admin.TrustedDevice, err error) {
	fs, cfg := c.newFlags(name)
	skin := fs.String("skin", "", "the skin that trusts the device")
	account := fs.String("account", "", "the operator's bare JID")
	device := fs.String("device", "", "the OMEMO device ID, as the operator's client or 'otrdesk operator devices' shows it")
	var fingerprint *string
	if withFingerprint {
		fingerprint = fs.String("fingerprint", "", "trust the device only with this identity key (the fingerprint its client shows); without it, serve reads the key the device publishes now")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return "", d, err
	}
	if len(pos) > 0 {
		return "", d, usagef("%s takes flags only, got %q", name, pos[0])
	}
	if *skin == "" || *account == "" || *device == "" {
		return "", d, usagef("%s needs --skin NAME --account JID --device ID", name)
	}
	id, err := strconv.ParseUint(*device, 10, 32)
	if err != nil || id == 0 || id > wire.MaxDeviceID {
		return "", d, usagef("--device %q is not an OMEMO device ID (1 to %d)", *device, wire.MaxDeviceID)
	}
	d = admin.TrustedDevice{Skin: *skin, Account: *account, Device: uint32(id)}
	if fingerprint != nil && *fingerprint != "" {
		fp, err := wire.ParseFingerprint(*fingerprint)
		if err != nil {
			return "", d, usagef("--fingerprint is not an OMEMO fingerprint: give the 64 hex digits the operator's client shows")
		}
		d.Fingerprint = fp.String()
	}
	return *cfg, d, nil
}

func keysAddDevice(c *cli, args []string) error {
	cfgPath, d, err := deviceFlags(c, "keys add-device", args, true)
	if err != nil {
		return err
	}
	_, svc, done, err := openServiceFlag(cfgPath)
	if err != nil {
		return err
	}
	defer done()
	// Without --fingerprint, serve reads the key the device publishes now
	// and records it; outside serve the device is trusted by ID alone.
	got, err := svc.AddDevice(d)
	if err != nil {
		return err
	}
	if got.Fingerprint == "" {
		fmt.Fprintf(c.stdout, "skin %s trusts OMEMO device %d of %s by its ID alone, with any identity key it publishes\n", got.Skin, got.Device, got.Account)
		fmt.Fprintf(c.stderr, "otrdesk keys add-device: no identity key is recorded for device %d of %s, so neither the keyring of skin %s nor its skin JSON can vouch for it, and only a page that pins its fingerprint trusts it: run this again while serve runs (it reads the key), or with --fingerprint\n", got.Device, got.Account, got.Skin)
		return nil
	}
	f, err := wire.ParseFingerprint(got.Fingerprint)
	if err != nil {
		return fmt.Errorf("the service recorded %q for device %d, which is not an OMEMO fingerprint", got.Fingerprint, got.Device)
	}
	fmt.Fprintf(c.stdout, "skin %s trusts OMEMO device %d of %s, only with identity key %s\n", got.Skin, got.Device, got.Account, f)
	if d.Fingerprint == "" {
		// Read, not given: the admin has yet to compare it.
		fmt.Fprintf(c.stdout, "That is the key the device publishes now. Compare it with the fingerprint %s's client shows for this device (Gajim shows it in upper case); if they differ, run 'otrdesk keys revoke-device --skin %s --account %s --device %d'.\n", got.Account, got.Skin, got.Account, got.Device)
	}
	fmt.Fprintf(c.stdout, "Unpinned pages see the key in the skin JSON at once; pages that pin the signer trust it once you run 'otrdesk keyring sign --skin %s --signer FILE'.\n", got.Skin)
	return nil
}

func keysRevokeDevice(c *cli, args []string) error {
	cfgPath, d, err := deviceFlags(c, "keys revoke-device", args, false)
	if err != nil {
		return err
	}
	_, svc, done, err := openServiceFlag(cfgPath)
	if err != nil {
		return err
	}
	defer done()
	if err := svc.RevokeDevice(d.Skin, d.Account, d.Device); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "skin %s no longer trusts OMEMO device %d of %s: new chats with this operator use only its other trusted devices, or OTR\n", d.Skin, d.Device, d.Account)
	return nil
}

// deviceReader lets the admin API read operators' devices through serve's
// component.
func deviceReader(comp *component.Component) func(context.Context, string) ([]admin.ReadDevice, error) {
	return func(ctx context.Context, account string) ([]admin.ReadDevice, error) {
		devs, err := comp.OperatorDevices(ctx, account)
		if err != nil {
			return nil, err
		}
		out := make([]admin.ReadDevice, len(devs))
		for i, d := range devs {
			out[i] = admin.ReadDevice{ID: d.ID, Fingerprint: d.Fingerprint, HasBundle: d.HasBundle}
		}
		return out, nil
	}
}
