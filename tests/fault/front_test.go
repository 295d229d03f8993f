package fault

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/argocontroller/resume-trigger/tests/internal/chain"
)

// backend is one resume-trigger replica: its gRPC address and its HTTP base URL (/readyz).
type backend struct{ name, grpc, http string }

// front is what a Kubernetes Service is to the Sensor: it accepts TCP connections at the chain's server
// address and forwards each to a replica that answers /readyz (with --leader-elect, the leader), so the
// Sensor reaches whichever replica serves. A connection finding no ready replica is closed, as a
// Service without endpoints refuses it.
type front struct {
	l net.Listener

	mu       sync.Mutex
	backends []backend
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

func startFront(addr string, backends ...backend) (*front, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	f := &front{l: l, backends: backends, conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

// setBackends replaces the replicas new connections may go to.
func (f *front) setBackends(backends ...backend) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.backends = backends
}

func (f *front) serve() {
	defer f.wg.Done()
	for {
		conn, err := f.l.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.forward(conn)
		}()
	}
}

func (f *front) track(c net.Conn, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on {
		f.conns[c] = true
	} else {
		delete(f.conns, c)
	}
}

func (f *front) forward(in net.Conn) {
	f.track(in, true)
	defer f.track(in, false)
	defer func() { _ = in.Close() }()
	f.mu.Lock()
	backends := append([]backend(nil), f.backends...)
	f.mu.Unlock()
	var out net.Conn
	for _, b := range backends {
		if !ready(b) {
			continue
		}
		c, err := (&net.Dialer{Timeout: 2 * time.Second}).Dial("tcp", b.grpc)
		if err == nil {
			out = c
			break
		}
	}
	if out == nil {
		return
	}
	f.track(out, true)
	defer f.track(out, false)
	defer func() { _ = out.Close() }()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Either side ending ends both: a replica that died must not leave the Sensor on a half-open
		// connection.
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}

// ready reports whether the replica answers /readyz with 200 within a second.
func ready(b backend) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return chain.HTTPOK(ctx, b.http+"/readyz")
}

// close stops accepting, ends every forwarded connection and waits for the forwarding to end.
func (f *front) close() {
	err := f.l.Close()
	f.mu.Lock()
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	if err == nil || errors.Is(err, net.ErrClosed) {
		f.wg.Wait()
	}
}
