package heartbeater

// The Go driver of the conformance suite (tests/conformance/README.md): one subtest per
// scenario file, every file in tests/conformance/scenarios. A step it does not know fails;
// a scenario is n/a only for a capability capabilities.json says Go lacks.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func conformanceDir(t *testing.T) string {
	if d := os.Getenv("HB_CONFORMANCE_DIR"); d != "" {
		return d
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate conformance_test.go")
	}
	return filepath.Join(filepath.Dir(file), "..", "tests", "conformance")
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// errorKinds are hb-core's Error::kind() names with the Go sentinel of each.
var errorKinds = map[string]error{
	"config": ErrConfig, "connect": ErrConnect, "permission_denied": ErrPermissionDenied,
	"not_holder": ErrNotHolder, "stopped": ErrStopped, "forked": ErrForked,
	"invalid_state": ErrInvalidState, "timeout": ErrTimeout, "io": ErrIO, "internal": ErrInternal,
}

func kindOf(err error) string {
	for name, sentinel := range errorKinds {
		if errors.Is(err, sentinel) {
			return name
		}
	}
	return fmt.Sprintf("no sentinel (%T)", err)
}

type scenario struct {
	Name       string            `json:"name"`
	Requires   []string          `json:"requires"`
	Transports []string          `json:"transports"`
	TLSIDs     []string          `json:"tls_ids"`
	Steps      []json.RawMessage `json:"steps"`
}

// over is the scenario as run over transport (tests/conformance/README.md, "Transports"):
// ${transport} replaced, and each list element ${tls.monitor}, ${tls.client} (options) or
// ${tls.beat} (CLI arguments) replaced by that side's TLS files, or by nothing over
// another transport.
func over(v any, transport, certs string) any {
	files := func(side string) [][2]string {
		return [][2]string{
			{"tls_ca_file", filepath.Join(certs, "ca.pem")},
			{"tls_cert_file", filepath.Join(certs, side+".pem")},
			{"tls_key_file", filepath.Join(certs, side+"-key.pem")},
		}
	}
	pairs := func(side string) (out []any) {
		for _, kv := range files(side) {
			out = append(out, []any{kv[0], kv[1]})
		}
		return out
	}
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, "${transport}", transport)
	case []any:
		out := []any{}
		for _, e := range x {
			var splice []any
			switch s, _ := e.(string); s {
			case "${tls.monitor}":
				splice = pairs("monitor")
			case "${tls.client}":
				splice = pairs("client")
			case "${tls.beat}":
				for _, kv := range files("client") {
					splice = append(splice, "--"+strings.ReplaceAll(kv[0], "_", "-"), kv[1])
				}
			default:
				out = append(out, over(e, transport, certs))
				continue
			}
			if transport == "tls" {
				out = append(out, splice...)
			}
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = over(e, transport, certs)
		}
		return out
	}
	return v
}

type step struct {
	Do        string          `json:"do"`
	As        string          `json:"as"`
	H         string          `json:"h"`
	P         string          `json:"p"`
	Options   [][2]string     `json:"options"`
	Expect    json.RawMessage `json:"expect"`
	Then      string          `json:"then"`
	Peer      string          `json:"peer"`
	TimeoutMS int64           `json:"timeout_ms"`
	WithinMS  *int64          `json:"within_ms"`
	ForMS     int64           `json:"for_ms"`
	Value     string          `json:"value"`
	Args      []string        `json:"args"`
	Signal    string          `json:"signal"`
	Name      string          `json:"name"`
	Save      string          `json:"save"`
}

type expectation struct {
	Error    *string         `json:"error"`
	Message  *string         `json:"message"`
	Contains *string         `json:"contains"`
	Value    json.RawMessage `json:"value"`
	ValueMin *uint64         `json:"value_min"`
	ValueMax *uint64         `json:"value_max"`
	IDs      *[]string       `json:"ids"`
	Greater  *string         `json:"greater_than"`
	Event    *eventWant      `json:"event"`
}

type eventWant struct {
	From, To, Reason, Peer string
}

// goHandle is what Client, Monitor and Watcher share.
type goHandle interface {
	Start() error
	Stop() error
	Close() error
	Events() <-chan Event
	OnEvent(func(Event))
}

type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) push(ev Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

type confDriver struct {
	t      *testing.T
	vars   map[string]string
	names  map[string][]string
	logger *slog.Logger

	mu       sync.Mutex // handles may be removed by a callback ("free")
	handles  map[string]goHandle
	logs     map[string]*eventLog
	callback map[string]bool
	procs    map[string]*exec.Cmd
	tokens   map[string]Token // kept by `token` steps with `save`
}

// electionHandle gives an Election the shape of the driver's other handles.
type electionHandle struct{ *Election }

func (electionHandle) Start() error { return errors.New("an election has no start (campaign)") }

func (d *confDriver) election(name string) (*Election, error) {
	h, err := d.handle(name)
	if err != nil {
		return nil, err
	}
	e, ok := h.(electionHandle)
	if !ok {
		return nil, fmt.Errorf("%q is not an election", name)
	}
	return e.Election, nil
}

func (d *confDriver) makeElection(st step, want expectation) error {
	opts := []Option{WithLogger(d.logger)}
	endpoint := "" // an Election takes its endpoint as NewElection's argument
	for _, kv := range st.Options {
		if kv[0] == "endpoint" && endpoint == "" {
			endpoint = d.subst(kv[1])
			continue
		}
		opts = append(opts, WithOption(kv[0], d.subst(kv[1])))
	}
	e, err := NewElection(endpoint, d.subst(st.Name), []byte(d.subst(st.Value)), opts...)
	if err != nil || want.Error != nil {
		if e != nil {
			_ = e.Close()
		}
		return judge(err, want, nil)
	}
	d.mu.Lock()
	d.handles[d.subst(st.As)] = electionHandle{e}
	d.mu.Unlock()
	return nil
}

// waitEvent waits until an event of any peer matches; it consumes it and every one before.
func (d *confDriver) waitEvent(st step) error {
	name := d.subst(st.H)
	var want eventWant
	if err := json.Unmarshal(st.Expect, &want); err != nil {
		return fmt.Errorf("expect %s: %v", st.Expect, err)
	}
	until := time.Now().Add(withinOr(st.WithinMS))
	l := d.log(name)
	for {
		l.mu.Lock()
		for i, ev := range l.events {
			if d.matches(ev, want) == nil {
				l.events = append([]Event(nil), l.events[i+1:]...)
				l.mu.Unlock()
				return nil
			}
		}
		seen := fmt.Sprint(l.events)
		l.mu.Unlock()
		if time.Now().After(until) {
			return fmt.Errorf("no event %s within the time; recorded: %s", st.Expect, seen)
		}
		if err := d.poll(name, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

func (d *confDriver) subst(s string) string {
	for k, v := range d.vars {
		s = strings.ReplaceAll(s, "${"+k+"}", v)
	}
	return s
}

func (d *confDriver) handle(name string) (goHandle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, ok := d.handles[name]
	if !ok {
		return nil, fmt.Errorf("no handle %q", name)
	}
	return h, nil
}

func (d *confDriver) client(name string) (*Client, error) {
	h, err := d.handle(name)
	if err != nil {
		return nil, err
	}
	c, ok := h.(*Client)
	if !ok {
		return nil, fmt.Errorf("%q is not a client", name)
	}
	return c, nil
}

func (d *confDriver) log(name string) *eventLog {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.logs[name]
	if !ok {
		l = &eventLog{}
		d.logs[name] = l
	}
	return l
}

func (d *confDriver) run(steps []json.RawMessage) error {
	for i, raw := range steps {
		var st step
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("step %d: %v", i, err)
		}
		if err := d.step(st); err != nil {
			return fmt.Errorf("step %d (%s): %v", i, st.Do, err)
		}
	}
	return nil
}

func (d *confDriver) step(st step) error {
	var want expectation
	var wantWord string // "timeout" / "end" for next_event
	if len(st.Expect) > 0 {
		st.Expect = json.RawMessage(d.subst(string(st.Expect))) // ${run} in messages
		if err := json.Unmarshal(st.Expect, &wantWord); err != nil {
			if err := json.Unmarshal(st.Expect, &want); err != nil && st.Do != "events" {
				return fmt.Errorf("expect %s: %v", st.Expect, err)
			}
		}
	}
	switch st.Do {
	case "monitor", "client", "watcher":
		return d.make(st, want)
	case "election":
		return d.makeElection(st, want)
	case "campaign":
		e, err := d.election(d.subst(st.H))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(st.TimeoutMS)*time.Millisecond)
		defer cancel()
		_, err = e.Campaign(ctx)
		return judge(err, want, nil)
	case "resign":
		e, err := d.election(d.subst(st.H))
		if err != nil {
			return err
		}
		return judge(e.Resign(context.Background()), want, nil)
	case "token":
		e, err := d.election(d.subst(st.H))
		if err != nil {
			return err
		}
		tok, err := e.Token()
		if err == nil && st.Save != "" {
			d.tokens[st.Save] = tok
		}
		return judge(err, want, func() error {
			if want.Greater == nil {
				return nil
			}
			before, ok := d.tokens[*want.Greater]
			if !ok {
				return fmt.Errorf("no saved token %q", *want.Greater)
			}
			if tok.Revision <= before.Revision {
				return fmt.Errorf("token revision %d not above %s's %d", tok.Revision, *want.Greater, before.Revision)
			}
			return nil
		})
	case "leader":
		// With within_ms, until it matches: the leader is what our watch has seen.
		e, err := d.election(d.subst(st.H))
		if err != nil {
			return err
		}
		until := time.Now().Add(time.Duration(0))
		if st.WithinMS != nil {
			until = time.Now().Add(time.Duration(*st.WithinMS) * time.Millisecond)
		}
		for {
			l, ok, err := e.Leader()
			err = judge(err, want, func() error {
				if len(want.Value) == 0 {
					return nil
				}
				var w *string
				if err := json.Unmarshal(want.Value, &w); err != nil {
					return err
				}
				switch {
				case w == nil && ok:
					return fmt.Errorf("leader %q, expected nobody", l.Value)
				case w != nil && (!ok || string(l.Value) != *w):
					return fmt.Errorf("leader %q (found %v), expected %q", l.Value, ok, *w)
				}
				return nil
			})
			if err == nil || time.Now().After(until) {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
	case "wait_event":
		return d.waitEvent(st)
	case "start":
		h, err := d.handle(d.subst(st.H))
		if err != nil {
			return err
		}
		err = h.Start()
		if m, ok := h.(*Monitor); ok && err == nil {
			addrs, _ := m.LocalAddrs()
			for _, a := range addrs {
				scheme, _, _ := strings.Cut(a, "://")
				d.vars[d.subst(st.H)+"."+scheme] = a
			}
		}
		return judge(err, want, nil)
	case "stop":
		h, err := d.handle(d.subst(st.H))
		if err != nil {
			return err
		}
		return judge(h.Stop(), want, nil)
	case "free":
		name := d.subst(st.H)
		h, err := d.handle(name)
		if err != nil {
			return err
		}
		d.mu.Lock()
		delete(d.handles, name)
		d.mu.Unlock()
		return h.Close()
	case "state":
		c, err := d.client(d.subst(st.H))
		if err != nil {
			return err
		}
		if want.Error != nil {
			return errors.New("Go's Client.State reports no error")
		}
		return sameValue(string(c.State()), want.Value)
	case "check":
		if e, err := d.election(d.subst(st.H)); err == nil {
			return judge(e.Check(), want, nil)
		}
		c, err := d.client(d.subst(st.H))
		if err != nil {
			return err
		}
		return judge(c.Check(), want, nil)
	case "fencing_token":
		c, err := d.client(d.subst(st.H))
		if err != nil {
			return err
		}
		tok, err := c.FencingToken()
		return judge(err, want, func() error { return sameValue([]any{tok.LeaseID, tok.Epoch}, want.Value) })
	case "remaining":
		if e, err := d.election(d.subst(st.H)); err == nil {
			return within(uint64(e.Remaining().Milliseconds()), want)
		}
		c, err := d.client(d.subst(st.H))
		if err != nil {
			return err
		}
		if want.Error != nil {
			return errors.New("Go's Client.Remaining reports no error")
		}
		return within(uint64(c.Remaining().Milliseconds()), want)
	case "incarnation":
		c, err := d.client(d.subst(st.H))
		if err != nil {
			return err
		}
		_, err = c.Incarnation()
		return judge(err, want, nil)
	case "peers":
		// With within_ms, until the list matches: a watcher's list follows etcd a round
		// trip after the event that announced the change.
		if st.WithinMS == nil {
			return d.peers(st, want)
		}
		until := time.Now().Add(time.Duration(*st.WithinMS) * time.Millisecond)
		for {
			err := d.peers(st, want)
			if err == nil || time.Now().After(until) {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
	case "http_addr":
		addr, err := d.httpAddr(st)
		return judge(err, want, func() error {
			got := "none"
			if strings.HasSuffix(addr, ":0") {
				got = "port 0"
			} else if addr != "" {
				got = "serving"
			}
			var w string
			if err := json.Unmarshal(want.Value, &w); err != nil || got != w {
				return fmt.Errorf("http_addr %s (%q), expected %s", got, addr, want.Value)
			}
			return nil
		})
	case "http_peers":
		// Until the API and Peers() agree on what was expected: the two reads are not one
		// snapshot.
		within := int64(2000)
		if st.WithinMS != nil {
			within = *st.WithinMS
		}
		until := time.Now().Add(time.Duration(within) * time.Millisecond)
		for {
			err := d.httpPeers(st, want)
			if err == nil || time.Now().After(until) {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
	case "next_event":
		return d.nextEvent(st, wantWord, want)
	case "on_event":
		return d.onEvent(st)
	case "events":
		return d.events(st)
	case "no_events":
		name, peer := d.subst(st.H), d.subst(st.Peer)
		until := time.Now().Add(time.Duration(st.ForMS) * time.Millisecond)
		for time.Now().Before(until) {
			if err := d.poll(name, 20*time.Millisecond); err != nil {
				return err
			}
		}
		if n := d.count(name, peer); n != 0 {
			return fmt.Errorf("%d events for %s", n, peer)
		}
		return nil
	case "wait_state":
		c, err := d.client(d.subst(st.H))
		if err != nil {
			return err
		}
		until := time.Now().Add(withinOr(st.WithinMS))
		for {
			s := c.State()
			if string(s) == st.Value {
				return nil
			}
			if time.Now().After(until) {
				return fmt.Errorf("state %s, expected %s", s, st.Value)
			}
			time.Sleep(10 * time.Millisecond)
		}
	case "beat":
		args := []string{"beat"}
		for _, a := range st.Args {
			args = append(args, d.subst(a))
		}
		cmd := exec.Command(heartbeaterBin(d.t), args...)
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("spawn heartbeater beat: %v", err)
		}
		d.procs[d.subst(st.As)] = cmd
		return nil
	case "kill":
		name := d.subst(st.P)
		cmd, ok := d.procs[name]
		if !ok {
			return fmt.Errorf("no process %q", name)
		}
		delete(d.procs, name)
		sig := syscall.SIGKILL
		if st.Signal == "TERM" {
			sig = syscall.SIGTERM
		}
		if err := cmd.Process.Signal(sig); err != nil {
			return err
		}
		_ = cmd.Wait() // a signalled exit is the expected one
		return nil
	case "fork":
		return errors.New("Go cannot fork (the scenario must require \"fork\")")
	case "names":
		return d.checkNames()
	default:
		return fmt.Errorf("unknown step %q", st.Do)
	}
}

// make builds the handle from generic text options. Go makes the engine handle on first
// use, so an expected error is taken from Start; an expected success is confirmed by a
// call that makes the handle without starting it.
func (d *confDriver) make(st step, want expectation) error {
	opts := []Option{WithLogger(d.logger)}
	endpoint := "" // a Watcher takes its endpoint as NewWatcher's argument
	for _, kv := range st.Options {
		if st.Do == "watcher" && kv[0] == "endpoint" && endpoint == "" {
			endpoint = d.subst(kv[1])
			continue
		}
		opts = append(opts, WithOption(kv[0], d.subst(kv[1])))
	}
	var h goHandle
	var made func() error
	switch st.Do {
	case "client":
		c := NewClient(opts...)
		h, made = c, func() error { _, err := c.Incarnation(); return err }
	case "monitor":
		m := NewMonitor(opts...)
		h, made = m, func() error { _, err := m.LocalAddrs(); return err }
	default:
		w := NewWatcher(endpoint, opts...)
		h, made = w, func() error { _, err := w.Peers(); return err }
	}
	if want.Error != nil {
		err := h.Start()
		_ = h.Close()
		return judge(err, want, nil)
	}
	if err := made(); err != nil {
		_ = h.Close()
		return judge(err, want, nil)
	}
	d.mu.Lock()
	d.handles[d.subst(st.As)] = h
	d.mu.Unlock()
	return nil
}

func (d *confDriver) peers(st step, want expectation) error {
	h, err := d.handle(d.subst(st.H))
	if err != nil {
		return err
	}
	var peers []Peer
	switch v := h.(type) {
	case *Monitor:
		peers, err = v.Peers()
	case *Watcher:
		peers, err = v.Peers()
	default:
		return errors.New("peers of a client")
	}
	return judge(err, want, func() error {
		ids := []string{}
		for _, p := range peers {
			ids = append(ids, p.ID)
		}
		return d.sameIDs("peers", ids, want)
	})
}

func (d *confDriver) httpAddr(st step) (string, error) {
	h, err := d.handle(d.subst(st.H))
	if err != nil {
		return "", err
	}
	switch v := h.(type) {
	case *Monitor:
		return v.HTTPAddr()
	case *Watcher:
		return v.HTTPAddr()
	}
	return "", errors.New("http_addr of a client")
}

// peerFields are the fields every language's peer has.
type peerFields struct {
	ID          string            `json:"id"`
	Service     string            `json:"service"`
	Labels      map[string]string `json:"labels"`
	State       string            `json:"state"`
	Incarnation uint32            `json:"incarnation"`
}

func sortPeers(ps []peerFields) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Service != ps[j].Service {
			return ps[i].Service < ps[j].Service
		}
		return ps[i].ID < ps[j].ID
	})
	for i := range ps {
		if ps[i].Labels == nil {
			ps[i].Labels = map[string]string{}
		}
	}
}

// httpPeers checks GET /v1/peers against want.IDs and against this language's Peers().
func (d *confDriver) httpPeers(st step, want expectation) error {
	addr, err := d.httpAddr(st)
	if err != nil {
		return err
	}
	if addr == "" {
		return errors.New("serves no HTTP API")
	}
	// No keep-alive: no idle connection (and its goroutines) outlives the step.
	client := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/v1/peers")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v1/peers: %s", resp.Status)
	}
	var body struct {
		Peers []peerFields `json:"peers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("GET /v1/peers: %w", err)
	}
	h, _ := d.handle(d.subst(st.H))
	var peers []Peer
	switch v := h.(type) {
	case *Monitor:
		peers, err = v.Peers()
	case *Watcher:
		peers, err = v.Peers()
	}
	if err != nil {
		return fmt.Errorf("Peers(): %w", err)
	}
	own := []peerFields{}
	for _, p := range peers {
		own = append(own, peerFields{p.ID, p.Service, p.Labels, string(p.State), p.Incarnation})
	}
	api := append([]peerFields{}, body.Peers...)
	ids := []string{}
	for _, p := range api {
		ids = append(ids, p.ID)
	}
	if err := d.sameIDs("GET /v1/peers ids", ids, want); err != nil {
		return err
	}
	sortPeers(api)
	sortPeers(own)
	if !reflect.DeepEqual(api, own) {
		return fmt.Errorf("GET /v1/peers %+v, Peers() %+v", api, own)
	}
	return nil
}

// sameIDs compares ids, sorted, with want.IDs.
func (d *confDriver) sameIDs(what string, ids []string, want expectation) error {
	sort.Strings(ids)
	wantIDs := []string{}
	if want.IDs != nil {
		for _, id := range *want.IDs {
			wantIDs = append(wantIDs, d.subst(id))
		}
	}
	if !reflect.DeepEqual(ids, wantIDs) {
		return fmt.Errorf("%s %v, expected %v", what, ids, wantIDs)
	}
	return nil
}

// receive is one poll of the Events() channel: an event, ok=false at the end of the
// stream (the channel closed), or timedOut.
func receive(h goHandle, wait time.Duration) (ev Event, ok, timedOut bool) {
	ch := h.Events()
	if wait <= 0 {
		select {
		case ev, ok = <-ch:
			return ev, ok, false
		default:
			return Event{}, true, true
		}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case ev, ok = <-ch:
		return ev, ok, false
	case <-timer.C:
		return Event{}, true, true
	}
}

func (d *confDriver) nextEvent(st step, word string, want expectation) error {
	h, err := d.handle(d.subst(st.H))
	if err != nil {
		return err
	}
	if want.Error != nil {
		return errors.New("Go's Events() channel reports no error")
	}
	ev, ok, timedOut := receive(h, time.Duration(st.TimeoutMS)*time.Millisecond)
	switch {
	case timedOut && word == "timeout", !timedOut && !ok && word == "end":
		return nil
	case !timedOut && ok && want.Event != nil:
		return d.matches(ev, *want.Event)
	case timedOut:
		return fmt.Errorf("timeout, expected %s", st.Expect)
	case !ok:
		return fmt.Errorf("end of the stream, expected %s", st.Expect)
	default:
		return fmt.Errorf("event %s, expected %s", ev, st.Expect)
	}
}

func (d *confDriver) onEvent(st step) error {
	name := d.subst(st.H)
	h, err := d.handle(name)
	if err != nil {
		return err
	}
	log := d.log(name)
	d.mu.Lock()
	d.callback[name] = true
	d.mu.Unlock()
	var once sync.Once
	h.OnEvent(func(ev Event) {
		log.push(ev)
		once.Do(func() {
			switch st.Then {
			case "stop":
				_ = h.Stop()
			case "free":
				d.mu.Lock()
				delete(d.handles, name)
				d.mu.Unlock()
				_ = h.Close()
			case "raise":
				panic("conformance: a callback that panics")
			}
		})
	})
	return nil
}

// poll moves one event of a handle without a callback from Events() into its log; for a
// handle with a callback it only waits.
func (d *confDriver) poll(name string, wait time.Duration) error {
	d.mu.Lock()
	h, ok := d.handles[name]
	cb := d.callback[name]
	d.mu.Unlock()
	if cb || !ok {
		time.Sleep(wait)
		return nil
	}
	ev, open, timedOut := receive(h, wait)
	if !timedOut && open {
		d.log(name).push(ev)
	} else if !open {
		time.Sleep(wait) // the end: nothing more will come
	}
	return nil
}

func (d *confDriver) count(name, peer string) int {
	l := d.log(name)
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.events {
		if ev.Peer == peer {
			n++
		}
	}
	return n
}

func (d *confDriver) events(st step) error {
	name, peer := d.subst(st.H), d.subst(st.Peer)
	var want []eventWant
	if err := json.Unmarshal(st.Expect, &want); err != nil {
		return fmt.Errorf("expect %s: %v", st.Expect, err)
	}
	until := time.Now().Add(withinOr(st.WithinMS))
	l := d.log(name)
	for d.count(name, peer) < len(want) {
		if time.Now().After(until) {
			l.mu.Lock()
			seen := fmt.Sprint(l.events)
			l.mu.Unlock()
			return fmt.Errorf("%d of %d events for %s within the time; recorded: %s", d.count(name, peer), len(want), peer, seen)
		}
		if err := d.poll(name, 50*time.Millisecond); err != nil {
			return err
		}
	}
	l.mu.Lock()
	var taken, rest []Event
	for _, ev := range l.events {
		if ev.Peer == peer && len(taken) < len(want) {
			taken = append(taken, ev)
		} else {
			rest = append(rest, ev)
		}
	}
	l.events = rest
	l.mu.Unlock()
	for i, w := range want {
		if err := d.matches(taken[i], w); err != nil {
			return fmt.Errorf("%v; events were %v", err, taken)
		}
	}
	return nil
}

func (d *confDriver) matches(ev Event, w eventWant) error {
	for _, f := range [][3]string{{"from", string(ev.From), w.From}, {"to", string(ev.To), w.To}, {"reason", string(ev.Reason), w.Reason}} {
		if f[2] != "" && f[1] != f[2] {
			return fmt.Errorf("%s %s, expected %s", f[0], f[1], f[2])
		}
	}
	if w.Peer != "" && d.subst(w.Peer) != ev.Peer {
		return fmt.Errorf("peer %s, expected %s", ev.Peer, d.subst(w.Peer))
	}
	return nil
}

// checkNames compares Go's own names with names.json: the State and Reason constants,
// a sentinel for every error kind, and the status codes as the header names them.
func (d *confDriver) checkNames() error {
	var problems []string
	compare := func(key string, ours []string) {
		if !reflect.DeepEqual(d.names[key], ours) {
			problems = append(problems, fmt.Sprintf("names.json %s %v, Go has %v", key, d.names[key], ours))
		}
	}
	var states, reasons, kinds, codes []string
	for _, s := range goStates {
		states = append(states, string(s))
	}
	for _, r := range goReasons {
		reasons = append(reasons, string(r))
	}
	for _, k := range d.names["error_kinds"] {
		if _, ok := errorKinds[k]; ok {
			kinds = append(kinds, k)
		}
	}
	if len(errorKinds) != len(d.names["error_kinds"]) {
		problems = append(problems, fmt.Sprintf("Go maps %d error kinds, names.json has %d", len(errorKinds), len(d.names["error_kinds"])))
	}
	for i := uint32(0); ; i++ {
		name := statusName(i)
		if name == "unknown" {
			break
		}
		codes = append(codes, name)
	}
	compare("states", states)
	compare("reasons", reasons)
	compare("error_kinds", kinds)
	compare("status_codes", codes)
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func (d *confDriver) finish() {
	for _, cmd := range d.procs {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	d.mu.Lock()
	handles := d.handles
	d.handles = map[string]goHandle{}
	d.mu.Unlock()
	for _, h := range handles {
		_ = h.Close()
	}
}

// judge compares a call's error with the step's expect: absent means success (then
// onOK, if any, checks the value).
func judge(err error, want expectation, onOK func() error) error {
	if want.Error == nil {
		if err != nil {
			return fmt.Errorf("failed: %s (%v)", kindOf(err), err)
		}
		if onOK != nil {
			return onOK()
		}
		return nil
	}
	if err == nil {
		return fmt.Errorf("succeeded, expected error %s", *want.Error)
	}
	if k := kindOf(err); k != *want.Error {
		return fmt.Errorf("error %s (%v), expected %s", k, err, *want.Error)
	}
	var he *Error
	if !errors.As(err, &he) {
		return fmt.Errorf("%v is not a *heartbeater.Error", err)
	}
	if want.Message != nil && he.Message != *want.Message {
		return fmt.Errorf("message %q, expected %q", he.Message, *want.Message)
	}
	if want.Contains != nil && !strings.Contains(he.Message, *want.Contains) {
		return fmt.Errorf("message %q lacks %q", he.Message, *want.Contains)
	}
	return nil
}

func sameValue(got any, want json.RawMessage) error {
	if len(want) == 0 {
		return nil
	}
	g, _ := json.Marshal(got)
	var a, b any
	_ = json.Unmarshal(g, &a)
	_ = json.Unmarshal(want, &b)
	if !reflect.DeepEqual(a, b) {
		return fmt.Errorf("value %s, expected %s", g, want)
	}
	return nil
}

func within(ms uint64, want expectation) error {
	lo, hi := uint64(0), ^uint64(0)
	if want.ValueMin != nil {
		lo = *want.ValueMin
	}
	if want.ValueMax != nil {
		hi = *want.ValueMax
	}
	if ms < lo || ms > hi {
		return fmt.Errorf("value %d, expected %d..=%d", ms, lo, hi)
	}
	return nil
}

func withinOr(ms *int64) time.Duration {
	if ms == nil {
		return 10 * time.Second
	}
	return time.Duration(*ms) * time.Millisecond
}

// testWriter sends the package's reports (recovered callback panics) to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestConformance(t *testing.T) {
	dir := conformanceDir(t)
	var caps struct {
		Capabilities map[string]map[string]any `json:"capabilities"`
	}
	readJSON(t, filepath.Join(dir, "capabilities.json"), &caps)
	names := map[string]any{}
	readJSON(t, filepath.Join(dir, "names.json"), &names)
	nameLists := map[string][]string{}
	for k, v := range names {
		if list, ok := v.([]any); ok {
			for _, s := range list {
				nameLists[k] = append(nameLists[k], fmt.Sprint(s))
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "scenarios", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in %s (%v)", dir, err)
	}
	sort.Strings(files)

	var etcd string
	etcdWhy := ""
	etcdOnce := func(t *testing.T) {
		if etcd != "" || etcdWhy != "" {
			return
		}
		if e := os.Getenv("HB_CONFORMANCE_ETCD"); e != "" {
			etcd = e
			return
		}
		if _, err := exec.LookPath("etcd"); err != nil {
			etcdWhy = "etcd is not installed and HB_CONFORMANCE_ETCD is not set"
			return
		}
		etcd = startEtcd(t).Endpoint // stopped when TestConformance ends
	}

	for i, file := range files {
		var sc scenario
		readJSON(t, file, &sc)
		var generic any
		readJSON(t, file, &generic)
		stem := strings.TrimSuffix(filepath.Base(file), ".json")
		raw, _ := os.ReadFile(file)
		// Without "transports", the scenario runs once as written.
		transports := sc.Transports
		if len(transports) == 0 {
			transports = []string{""}
		}
		for j, transport := range transports {
			name := stem
			if transport != "" {
				name = stem + "-over-" + transport
			}
			t.Run(name, func(st *testing.T) {
				if sc.Name != stem {
					st.Fatalf("%s: the name %q must be the file's", file, sc.Name)
				}
				for _, c := range sc.Requires {
					switch v := caps.Capabilities[c]["go"].(type) {
					case bool:
						if !v {
							st.Fatalf("capability %q is false for go in capabilities.json", c)
						}
					case string:
						st.Skipf("n/a: %s (capabilities.json: %q)", c, v)
					default:
						st.Fatalf("capability %q is not declared for go in capabilities.json", c)
					}
				}
				vars := map[string]string{"run": fmt.Sprintf("go%dx%dt%d", os.Getpid(), i, j)}
				if strings.Contains(string(raw), "${etcd}") {
					etcdOnce(t)
					if etcd == "" {
						requireOrSkip(st, etcdWhy)
					}
					vars["etcd"] = etcd
				}
				d := &confDriver{
					t: st, vars: vars, names: nameLists,
					logger:  slog.New(slog.NewTextHandler(testWriter{st}, nil)),
					handles: map[string]goHandle{}, logs: map[string]*eventLog{},
					callback: map[string]bool{}, procs: map[string]*exec.Cmd{}, tokens: map[string]Token{},
				}
				run := sc
				if transport != "" {
					certs := st.TempDir()
					b, err := json.Marshal(over(generic, transport, certs))
					if err == nil {
						err = json.Unmarshal(b, &run)
					}
					if err != nil {
						st.Fatalf("%s over %s: %v", stem, transport, err)
					}
					if transport == "tls" {
						args := []string{certs}
						for _, id := range run.TLSIDs {
							args = append(args, d.subst(id))
						}
						if out, err := exec.Command(filepath.Join(dir, "tls-certs"), args...).CombinedOutput(); err != nil {
							st.Fatalf("tests/conformance/tls-certs %v: %v\n%s", args, err, out)
						}
					}
				}
				err := d.run(run.Steps)
				d.finish()
				if err != nil {
					st.Fatal(err)
				}
			})
		}
	}
}
