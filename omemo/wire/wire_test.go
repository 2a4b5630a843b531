package wire

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// b64 of a 33-byte key with the type byte, the 32 bytes all fill.
func keyB64(fill byte) string {
	k := bytes.Repeat([]byte{fill}, 33)
	k[0] = 0x05
	return base64.StdEncoding.EncodeToString(k)
}

func TestParseDeviceList(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     DeviceList
		err      error
	}{
		{"conversations", `<list xmlns='eu.siacs.conversations.axolotl'><device id='1437419541'/><device id='42'/></list>`, DeviceList{1437419541, 42}, nil},
		{"dino labels", `<list xmlns="eu.siacs.conversations.axolotl"><device id="7" label="Dino"/></list>`, DeviceList{7}, nil},
		{"empty", `<list xmlns='eu.siacs.conversations.axolotl'/>`, DeviceList{}, nil},
		{"duplicate", `<list xmlns='eu.siacs.conversations.axolotl'><device id='5'/><device id='5'/></list>`, DeviceList{5}, nil},
		{"other namespace", `<list xmlns='urn:xmpp:omemo:2'><device id='5'/></list>`, nil, ErrMalformed},
		{"id zero", `<list xmlns='eu.siacs.conversations.axolotl'><device id='0'/></list>`, nil, ErrMalformed},
		{"id 2^31", `<list xmlns='eu.siacs.conversations.axolotl'><device id='2147483648'/></list>`, nil, ErrMalformed},
		{"id signed", `<list xmlns='eu.siacs.conversations.axolotl'><device id='+5'/></list>`, nil, ErrMalformed},
		{"id missing", `<list xmlns='eu.siacs.conversations.axolotl'><device/></list>`, nil, ErrMalformed},
		{"trailing element", `<list xmlns='eu.siacs.conversations.axolotl'/><x/>`, nil, ErrMalformed},
		{"not xml", `<list`, nil, ErrMalformed},
		{"too many", `<list xmlns='eu.siacs.conversations.axolotl'>` + strings.Repeat(`<device id='9'/>`, MaxDevices+1) + `</list>`, nil, ErrTooLarge},
		{"too long", `<list xmlns='eu.siacs.conversations.axolotl'>` + strings.Repeat(" ", MaxElementBytes) + `</list>`, nil, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDeviceList([]byte(tc.in))
			if !errors.Is(err, tc.err) || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tc.want, tc.err)
			}
		})
	}
	l := DeviceList{1, MaxDeviceID}
	got, err := ParseDeviceList(l.Marshal())
	if err != nil || fmt.Sprint(got) != fmt.Sprint(l) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
}

func TestParseBundle(t *testing.T) {
	sig := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64))
	bundle := func(spk, sigText, ik, prekeys string) string {
		return `<bundle xmlns='eu.siacs.conversations.axolotl'>` +
			`<signedPreKeyPublic signedPreKeyId='1'>` + spk + `</signedPreKeyPublic>` +
			`<signedPreKeySignature>` + sigText + `</signedPreKeySignature>` +
			`<identityKey>` + ik + `</identityKey><prekeys>` + prekeys + `</prekeys></bundle>`
	}
	pre := func(id int, fill byte) string {
		return fmt.Sprintf(`<preKeyPublic preKeyId='%d'>%s</preKeyPublic>`, id, keyB64(fill))
	}
	good := bundle(keyB64(1), sig, keyB64(2), pre(1, 3)+pre(2, 4))
	b, err := ParseBundle([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if b.SignedPreKeyID != 1 || b.SignedPreKey[0] != 1 || b.IdentityKey[31] != 2 || b.Signature[63] != 7 ||
		len(b.PreKeys) != 2 || b.PreKeys[1].ID != 2 || b.PreKeys[1].Key[0] != 4 {
		t.Fatalf("parsed %+v", b)
	}
	if again, err := ParseBundle(b.Marshal()); err != nil || fmt.Sprint(again) != fmt.Sprint(b) {
		t.Fatalf("round trip: %v, %v", again, err)
	}
	// Android wraps base64 lines; some encoders leave out the padding.
	wrapped := keyB64(2)
	wrapped = wrapped[:20] + "\n" + strings.TrimRight(wrapped[20:], "=")
	if _, err := ParseBundle([]byte(bundle(keyB64(1), sig, wrapped, pre(1, 3)))); err != nil {
		t.Errorf("wrapped, unpadded base64: %v", err)
	}
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
	for name, in := range map[string]string{
		"key without type byte": bundle(keyB64(1), sig, short, ""),
		"short signature":       bundle(keyB64(1), sig[:40], keyB64(2), ""),
		"no identity key":       strings.Replace(good, "<identityKey>"+keyB64(2)+"</identityKey>", "", 1),
		"bad base64":            bundle(keyB64(1), sig, "!!!!", ""),
		"prekey id twice":       bundle(keyB64(1), sig, keyB64(2), pre(1, 3)+pre(1, 4)),
		"prekey id too big":     bundle(keyB64(1), sig, keyB64(2), pre(1<<24, 3)),
		"prekey bad key":        bundle(keyB64(1), sig, keyB64(2), `<preKeyPublic preKeyId='1'>AAAA</preKeyPublic>`),
		"no spk id":             strings.Replace(good, ` signedPreKeyId='1'`, "", 1),
	} {
		if _, err := ParseBundle([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	var many strings.Builder
	for i := 0; i <= MaxPreKeys; i++ {
		many.WriteString(pre(i+1, 3))
	}
	if _, err := ParseBundle([]byte(bundle(keyB64(1), sig, keyB64(2), many.String()))); !errors.Is(err, ErrTooLarge) {
		t.Errorf("%d prekeys: %v, want ErrTooLarge", MaxPreKeys+1, err)
	}
}

func TestParseEncrypted(t *testing.T) {
	iv := base64.StdEncoding.EncodeToString(make([]byte, 12))
	// As Conversations writes it (prekey='true'), and as others ('1').
	in := `<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='27183'>` +
		`<key rid='31415'>AQID</key><key prekey='true' rid='12321'>BAUG</key><key prekey='1' rid='7'>Bw==</key>` +
		`<iv>` + iv + `</iv></header><payload>aGk=</payload></encrypted>`
	e, err := ParseEncrypted([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if e.SID != 27183 || len(e.Keys) != 3 || e.Keys[0].RID != 31415 || e.Keys[0].PreKey ||
		!e.Keys[1].PreKey || !e.Keys[2].PreKey || !bytes.Equal(e.Keys[1].Data, []byte{4, 5, 6}) ||
		len(e.IV) != 12 || string(e.Payload) != "hi" {
		t.Fatalf("parsed %+v", e)
	}
	if again, err := ParseEncrypted(e.Marshal()); err != nil || fmt.Sprint(again) != fmt.Sprint(e) {
		t.Fatalf("round trip: %+v, %v", again, err)
	}
	kt, err := ParseEncrypted([]byte(strings.Replace(in, "<payload>aGk=</payload>", "", 1)))
	if err != nil || kt.Payload != nil {
		t.Fatalf("key transport: %+v, %v", kt, err)
	}
	iv16 := base64.StdEncoding.EncodeToString(make([]byte, 16))
	if _, err := ParseEncrypted([]byte(strings.Replace(in, iv, iv16, 1))); err != nil {
		t.Errorf("16-byte iv: %v", err)
	}
	for name, bad := range map[string]string{
		"no sid":         strings.Replace(in, ` sid='27183'`, "", 1),
		"rid zero":       strings.Replace(in, `rid='7'`, `rid='0'`, 1),
		"prekey maybe":   strings.Replace(in, `prekey='1'`, `prekey='maybe'`, 1),
		"empty key":      strings.Replace(in, `AQID`, ``, 1),
		"no iv":          strings.Replace(in, `<iv>`+iv+`</iv>`, "", 1),
		"two ivs":        strings.Replace(in, `<iv>`+iv+`</iv>`, `<iv>`+iv+`</iv><iv>`+iv+`</iv>`, 1),
		"8-byte iv":      strings.Replace(in, iv, base64.StdEncoding.EncodeToString(make([]byte, 8)), 1),
		"two payloads":   strings.Replace(in, `</encrypted>`, `<payload>aGk=</payload></encrypted>`, 1),
		"payload junk":   strings.Replace(in, `aGk=`, `a*k=`, 1),
		"omemo 2":        strings.Replace(in, NS, "urn:xmpp:omemo:2", 1),
		"big key":        strings.Replace(in, `AQID`, base64.StdEncoding.EncodeToString(make([]byte, MaxKeyBytes+1)), 1),
		"not an element": `hello`,
	} {
		if _, err := ParseEncrypted([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	var keys strings.Builder
	for i := 0; i <= MaxKeys; i++ {
		keys.WriteString(`<key rid='1'>AQID</key>`)
	}
	many := strings.Replace(in, `<key rid='31415'>AQID</key>`, keys.String(), 1)
	if _, err := ParseEncrypted([]byte(many)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("%d keys: %v, want ErrTooLarge", MaxKeys+1, err)
	}
}

// Parse errors name the element, never its content.
func TestParseErrorsQuoteNothing(t *testing.T) {
	canary := "Q2FuYXJ5Q2FuYXJ5Q2Fu" // 15 bytes: no valid iv
	for _, in := range []string{
		`<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2'>` + canary + `</key><iv>` + canary + `</iv></header></encrypted>`,
		`<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'>` + canary + `</encrypted>`,
		`<bundle xmlns='eu.siacs.conversations.axolotl'><identityKey>` + canary + `</identityKey></bundle>`,
	} {
		_, err1 := ParseEncrypted([]byte(in))
		_, err2 := ParseBundle([]byte(in))
		for _, err := range []error{err1, err2} {
			if err == nil || strings.Contains(err.Error(), canary) {
				t.Errorf("error %v for %q", err, in)
			}
		}
	}
}

func TestBundleNode(t *testing.T) {
	if got := BundleNode(31415); got != "eu.siacs.conversations.axolotl.bundles:31415" {
		t.Errorf("BundleNode = %q", got)
	}
	if DeviceListNode != "eu.siacs.conversations.axolotl.devicelist" {
		t.Errorf("DeviceListNode = %q", DeviceListNode)
	}
}
