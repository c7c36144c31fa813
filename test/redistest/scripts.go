package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Slot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of the key,
// or of its hash tag (the text between the first "{" and the next "}",
// when not empty), modulo 16384.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % 16384)
}

func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// Script is one EVAL or EVALSHA the server ran, and the keys its
// commands touched.
type Script struct {
	Keys    []string // declared: the KEYS array
	Touched []string // every key a command inside the script named
}

// CheckScripts runs fn, watching the server with MONITOR, and fails t
// unless every script fn made the server run touched only keys it
// declared in KEYS, all in one hash slot: what Redis Cluster requires of
// a script. It returns the scripts seen, so a caller can check that fn
// ran the ones it meant to. Keys of inner commands come from the server
// itself (COMMAND GETKEYS), not from parsing the scripts.
func (s *Server) CheckScripts(t testing.TB, fn func()) []Script {
	t.Helper()
	ctx := context.Background()
	c := s.Client()
	defer c.Close()
	feed := s.monitor(t, func() {
		fn()
		// The feed is ordered: once this marker shows, fn's commands have.
		if err := c.Echo(ctx, monitorEnd).Err(); err != nil {
			t.Fatalf("redistest: echo: %v", err)
		}
	})

	var scripts []Script
	for _, l := range feed {
		src, args, err := parseMonitor(l)
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		if len(args) == 0 {
			continue
		}
		name := strings.ToUpper(args[0])
		if src != "lua" {
			if name == "EVAL" || name == "EVALSHA" {
				if len(args) < 3 {
					t.Fatalf("redistest: short %s: %q", name, l)
				}
				n, err := strconv.Atoi(args[2])
				if err != nil || 3+n > len(args) {
					t.Fatalf("redistest: bad numkeys in %q", l)
				}
				scripts = append(scripts, Script{Keys: args[3 : 3+n]})
			}
			continue
		}
		if len(scripts) == 0 {
			t.Fatalf("redistest: a script command before any script: %q", l)
		}
		keys, err := commandKeys(ctx, c, args)
		if err != nil {
			t.Fatalf("redistest: keys of %q: %v", l, err)
		}
		sc := &scripts[len(scripts)-1]
		sc.Touched = append(sc.Touched, keys...)
	}
	for _, sc := range scripts {
		for _, k := range sc.Touched {
			if !slices.Contains(sc.Keys, k) {
				t.Errorf("a script touched %q, which it did not declare in KEYS %q", k, sc.Keys)
			}
		}
		for _, k := range sc.Keys {
			if Slot(k) != Slot(sc.Keys[0]) {
				t.Errorf("script keys in different slots: %q is in %d, %q in %d", sc.Keys[0], Slot(sc.Keys[0]), k, Slot(k))
			}
		}
	}
	return scripts
}

const monitorEnd = "redistest-monitor-end"

// monitor returns the MONITOR feed of the commands run during fn, which
// must end by sending ECHO monitorEnd. It speaks RESP on its own
// connection: the server's +OK means the connection is a monitor, so
// nothing fn sends is missed.
func (s *Server) monitor(t testing.TB, fn func()) []string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr, readyTimeout)
	if err != nil {
		t.Fatalf("redistest: monitor: %v", err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatalf("redistest: monitor: %v", err)
	}
	if l, err := rd.ReadString('\n'); err != nil || l != "+OK\r\n" {
		t.Fatalf("redistest: monitor answered %q, %v", l, err)
	}
	type result struct {
		lines []string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		var lines []string
		for {
			l, err := rd.ReadString('\n')
			if err != nil {
				done <- result{lines, err}
				return
			}
			l = strings.TrimSuffix(strings.TrimPrefix(l, "+"), "\r\n")
			if strings.Contains(l, `"`+monitorEnd+`"`) {
				done <- result{lines, nil}
				return
			}
			lines = append(lines, l)
		}
	}()
	fn()
	r := <-done
	if r.err != nil {
		t.Fatalf("redistest: monitor: %v", r.err)
	}
	return r.lines
}

// commandKeys asks the server which of args are keys.
func commandKeys(ctx context.Context, c *redis.Client, args []string) ([]string, error) {
	a := make([]any, len(args))
	for i, s := range args {
		a[i] = s
	}
	keys, err := c.CommandGetKeys(ctx, a...).Result()
	if err != nil && strings.Contains(err.Error(), "no key arguments") || err == redis.Nil {
		return nil, nil
	}
	return keys, err
}

// parseMonitor splits a MONITOR line, `1700000000.123456 [0 lua] "HGET"
// "k" "f"`, into its source ("lua", or the client's address) and its
// unquoted arguments.
func parseMonitor(l string) (string, []string, error) {
	i := strings.Index(l, "[")
	j := strings.Index(l, "]")
	if i < 0 || j < i {
		return "", nil, fmt.Errorf("monitor line %q", l)
	}
	src := l[i+1 : j]
	if k := strings.IndexByte(src, ' '); k >= 0 {
		src = src[k+1:]
	}
	var args []string
	rest := l[j+1:]
	for {
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			return src, args, nil
		}
		if rest[0] != '"' {
			return "", nil, fmt.Errorf("monitor line %q: unquoted argument", l)
		}
		var b strings.Builder
		k := 1
		for ; k < len(rest) && rest[k] != '"'; k++ {
			if rest[k] != '\\' || k+1 >= len(rest) {
				b.WriteByte(rest[k])
				continue
			}
			k++
			switch rest[k] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'x':
				if k+2 < len(rest) {
					v, err := strconv.ParseUint(rest[k+1:k+3], 16, 8)
					if err != nil {
						return "", nil, fmt.Errorf("monitor line %q: %w", l, err)
					}
					b.WriteByte(byte(v))
					k += 2
				}
			default:
				b.WriteByte(rest[k])
			}
		}
		if k >= len(rest) {
			return "", nil, fmt.Errorf("monitor line %q: unterminated argument", l)
		}
		args = append(args, b.String())
		rest = rest[k+1:]
	}
}
