package kube

import (
	"context"
	"net"
	"strings"
	"testing"
)

func TestClusterDNS(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	d := clusterDNS{ServiceHost("weir-dev", "fake-openai", 80): lis.Addr().String()}
	for _, tt := range []struct {
		addr string
		err  string
	}{
		{"fake-openai.weir-dev.svc.cluster.local:80", ""},
		{"fake-openai.weir-dev.svc.cluster.local:8080", "no such host"},
		{"fake-openai.other.svc.cluster.local:80", "no such host"},
		{lis.Addr().String(), "no such host"}, // only Service names resolve
	} {
		c, err := d.dial(context.Background(), "tcp", tt.addr)
		if tt.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.addr, err)
				continue
			}
			c.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error %v, want %q", tt.addr, err, tt.err)
		}
	}
}
