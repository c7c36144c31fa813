// Package redisconn builds Weir's Redis client options from the config:
// one definition for the extproc's stores and the controller's spend
// status reader, so both reach Redis the same way (ACL user, TLS).
package redisconn

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/weir-ai/weir/config/certpool"

	"github.com/redis/go-redis/v9"

	"github.com/weir-ai/weir/config"
)

// Options builds the options of Weir's Redis client from the config:
// address, ACL user and password, database and TLS. A TLS file that cannot
// be used is an error, never a silent plain-text connection.
func Options(r *config.Redis) (*redis.Options, error) {
	o := &redis.Options{
		Addr:     r.Addr,
		Username: r.Username,
		Password: r.Password.Reveal(),
		DB:       r.DB,
		// The request path waits on Redis: fail fast and let the fail mode
		// (and the breaker) decide, rather than hold the client for seconds.
		DialTimeout:  time.Second,
		ReadTimeout:  500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond,
		MaxRetries:   1,
	}
	if r.TLS == nil || !r.TLS.Enabled {
		return o, nil
	}
	t := r.TLS
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if tc.ServerName == "" {
		host, _, err := net.SplitHostPort(r.Addr)
		if err != nil {
			return nil, fmt.Errorf("limits.redis.addr: %w", err)
		}
		tc.ServerName = host
	}
	if t.CAFile != "" {
		pool, err := certpool.Load(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("limits.redis.tls.ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("limits.redis.tls.cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	o.TLSConfig = tc
	return o, nil
}
