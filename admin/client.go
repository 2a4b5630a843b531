package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"otrdesk.im/otrdesk/store"
)

// Client reaches a running otrdesk serve through its admin API.
type Client struct {
	BaseURL string // e.g. "http://127.0.0.1:8080"
	Token   string
	HTTP    *http.Client
}

var _ Service = (*Client)(nil)

func (c *Client) do(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin: reaching otrdesk serve at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		_ = json.NewDecoder(io.LimitReader(resp.Body, maxRequestBytes)).Decode(&e)
		if ra := resp.Header.Get("Retry-After"); ra != "" && e.Error != "" {
			e.Error += " (retry after " + ra + " s)"
		}
		return remoteError(resp.StatusCode, e)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// remoteError turns an API error back into the sentinel it came from, so
// errors.Is works the same on Local and Client.
func remoteError(code int, e errorBody) error {
	sentinel := map[string]error{
		"not-found":         store.ErrNotFound,
		"exists":            store.ErrExists,
		"unauthorized":      ErrUnauthorized,
		"bad-request":       ErrBadRequest,
		"gone":              ErrGone,
		"too-many-failures": ErrTooManyFailures,
	}[e.Code]
	if e.Error == "" {
		e.Error = http.StatusText(code)
	}
	if sentinel == nil {
		return errors.New(e.Error)
	}
	return &apiError{msg: e.Error, err: sentinel}
}

type apiError struct {
	msg string
	err error
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.err }

func (c *Client) Skins() ([]store.Skin, error) {
	var out []store.Skin
	return out, c.do("GET", "/admin/v1/skins", nil, &out)
}

func (c *Client) Skin(name string) (store.Skin, error) {
	var out store.Skin
	return out, c.do("GET", "/admin/v1/skins/"+url.PathEscape(name), nil, &out)
}

func (c *Client) CreateSkin(s store.Skin) (store.Skin, error) {
	var out store.Skin
	return out, c.do("POST", "/admin/v1/skins", s, &out)
}

func (c *Client) UpdateSkin(name string, p SkinPatch) (store.Skin, error) {
	var out store.Skin
	return out, c.do("PATCH", "/admin/v1/skins/"+url.PathEscape(name), p, &out)
}

func (c *Client) DeleteSkin(name string) error {
	return c.do("DELETE", "/admin/v1/skins/"+url.PathEscape(name), nil, nil)
}

func (c *Client) RegisterKey(r KeyRegistration) ([]store.Skin, error) {
	var out []store.Skin
	return out, c.do("POST", "/admin/v1/keys/register", r, &out)
}

func (c *Client) Revoke(skins []string, all bool) ([]store.Skin, error) {
	var out []store.Skin
	return out, c.do("POST", "/admin/v1/keys/revoke", revokeRequest{Skins: skins, All: all}, &out)
}

func (c *Client) Stats(name string, days int) (store.SkinStats, error) {
	var out store.SkinStats
	return out, c.do("GET", "/admin/v1/skins/"+url.PathEscape(name)+"/stats?days="+strconv.Itoa(days), nil, &out)
}

// Backup streams the running store's consistent copy into w.
func (c *Client) Backup(w io.Writer) (int64, error) {
	req, err := http.NewRequest("GET", c.BaseURL+"/admin/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("admin: reaching otrdesk serve at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return 0, remoteError(resp.StatusCode, e)
	}
	return io.Copy(w, resp.Body)
}
