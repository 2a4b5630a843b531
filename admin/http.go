package admin

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"otrdesk.im/otrdesk/store"
)

// maxRequestBytes bounds every admin request body.
const maxRequestBytes = 64 << 10

// Handler serves the admin API for svc under /admin/v1/. An empty token
// disables the API: every request gets 401, since an API without a token
// would let anyone who reaches the port rewrite the skins. Failed logins
// are rate-limited per client address and in total (see loginLimits): over
// the limit every request, even one with the right token, gets 429 and
// Retry-After until the limit has passed.
func Handler(svc Service, st *store.Store, token string) http.Handler {
	return newHandler(svc, st, token, newLoginLimiter(defaultLoginLimits, time.Now))
}

func newHandler(svc Service, st *store.Store, token string, limiter *loginLimiter) http.Handler {
	h := &handler{svc: svc, st: st, token: []byte(token), limiter: limiter}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/v1/skins", h.list)
	mux.HandleFunc("POST /admin/v1/skins", h.create)
	mux.HandleFunc("GET /admin/v1/skins/{name}", h.show)
	mux.HandleFunc("PATCH /admin/v1/skins/{name}", h.update)
	mux.HandleFunc("DELETE /admin/v1/skins/{name}", h.remove)
	mux.HandleFunc("GET /admin/v1/skins/{name}/stats", h.stats)
	mux.HandleFunc("POST /admin/v1/keys", h.generateGone)
	mux.HandleFunc("POST /admin/v1/keys/register", h.register)
	mux.HandleFunc("POST /admin/v1/keys/revoke", h.revoke)
	mux.HandleFunc("GET /admin/v1/backup", h.backup)
	h.keyringRoutes(mux)
	h.deviceRoutes(mux)
	return h.auth(mux)
}

type handler struct {
	svc     Service
	st      *store.Store
	token   []byte
	limiter *loginLimiter
}

func (h *handler) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := clientAddr(r)
		// Over the limit the token is not compared at all, so a guess made
		// then learns nothing, right or wrong.
		if wait := h.limiter.limited(addr); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeError(w, http.StatusTooManyRequests, ErrTooManyFailures)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if len(h.token) == 0 || !ok || subtle.ConstantTimeCompare([]byte(got), h.token) != 1 {
			h.limiter.failed(addr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="otrdesk admin"`)
			writeError(w, http.StatusUnauthorized, ErrUnauthorized)
			return
		}
		// Answers carry skins and backups of the store: cache them nowhere.
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// status maps an error to an HTTP status and a code the client turns back
// into the same sentinel.
func status(err error) (int, string) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "not-found"
	case errors.Is(err, store.ErrExists):
		return http.StatusConflict, "exists"
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, ErrBadRequest), errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest, "bad-request"
	case errors.Is(err, ErrGone):
		return http.StatusGone, "gone"
	case errors.Is(err, ErrTooManyFailures):
		return http.StatusTooManyRequests, "too-many-failures"
	case errors.Is(err, ErrNeedsServe), errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal"
}

func writeError(w http.ResponseWriter, code int, err error) {
	_, c := status(err)
	writeJSON(w, code, errorBody{Error: err.Error(), Code: c})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *handler) reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		code, _ := status(err)
		writeError(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: the JSON body does not fit: %v", ErrBadRequest, err)
	}
	return nil
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	s, err := h.svc.Skins()
	h.reply(w, s, err)
}

func (h *handler) show(w http.ResponseWriter, r *http.Request) {
	s, err := h.svc.Skin(r.PathValue("name"))
	h.reply(w, s, err)
}

func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	var s store.Skin
	if err := decode(r, &s); err != nil {
		h.reply(w, nil, err)
		return
	}
	out, err := h.svc.CreateSkin(s)
	h.reply(w, out, err)
}

func (h *handler) update(w http.ResponseWriter, r *http.Request) {
	var p SkinPatch
	if err := decode(r, &p); err != nil {
		h.reply(w, nil, err)
		return
	}
	out, err := h.svc.UpdateSkin(r.PathValue("name"), p)
	h.reply(w, out, err)
}

func (h *handler) remove(w http.ResponseWriter, r *http.Request) {
	err := h.svc.DeleteSkin(r.PathValue("name"))
	h.reply(w, struct{}{}, err)
}

func (h *handler) stats(w http.ResponseWriter, r *http.Request) {
	days, _ := strconv.Atoi(r.URL.Query().Get("days"))
	s, err := h.svc.Stats(r.PathValue("name"), days)
	h.reply(w, s, err)
}

// generateGone answers an older otrdesk that asks serve for a key: the key
// would be made, and its private part sent, by the service.
func (h *handler) generateGone(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusGone, ErrGone)
}

func (h *handler) register(w http.ResponseWriter, r *http.Request) {
	var req KeyRegistration
	if err := decode(r, &req); err != nil {
		h.reply(w, nil, err)
		return
	}
	out, err := h.svc.RegisterKey(req)
	h.reply(w, out, err)
}

type revokeRequest struct {
	Skins []string `json:"skins,omitempty"`
	All   bool     `json:"all,omitempty"`
}

func (h *handler) revoke(w http.ResponseWriter, r *http.Request) {
	var req revokeRequest
	if err := decode(r, &req); err != nil {
		h.reply(w, nil, err)
		return
	}
	out, err := h.svc.Revoke(req.Skins, req.All)
	h.reply(w, out, err)
}

func (h *handler) backup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	if _, err := h.st.Backup(w); err != nil {
		// Headers are gone by now; a cut body is what the client sees, and
		// the client checks the length it got against the database's.
		return
	}
}
