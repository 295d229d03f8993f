package ui

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxClients bounds the limiter's memory.
const maxClients = 4096

// limiter gives each client address a token bucket. Behind a proxy every request comes from the proxy's
// address and shares its bucket: size Rate for that (X-Forwarded-For is not trusted, anyone can set it).
type limiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	clients map[string]*client
}

type client struct {
	bucket *rate.Limiter
	seen   time.Time
}

func newLimiter(r float64, burst int, now func() time.Time) *limiter {
	return &limiter{rate: rate.Limit(r), burst: burst, now: now, clients: map[string]*client{}}
}

// allow takes a token for the request's client address.
func (l *limiter) allow(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[host]
	if c == nil {
		if len(l.clients) >= maxClients {
			l.evict(now)
		}
		c = &client{bucket: rate.NewLimiter(l.rate, l.burst)}
		l.clients[host] = c
	}
	c.seen = now
	return c.bucket.AllowN(now, 1)
}

// evict forgets the clients whose bucket has refilled since they were last seen: forgetting them loses
// nothing. If every client is that busy, all are forgotten: an attacker with that many addresses gains a
// burst each, no more.
func (l *limiter) evict(now time.Time) {
	full := time.Duration(float64(l.burst) / float64(l.rate) * float64(time.Second))
	for host, c := range l.clients {
		if now.Sub(c.seen) >= full {
			delete(l.clients, host)
		}
	}
	if len(l.clients) >= maxClients {
		clear(l.clients)
	}
}
