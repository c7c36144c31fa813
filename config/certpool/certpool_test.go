package certpool

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-ai/weir/test/testpki"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	for _, tt := range []struct {
		name    string
		content []byte // nil: no file
		wantErr error
	}{
		{"a CA", ca.PEM, nil},
		{"junk", []byte("not a certificate"), ErrNoCertificate},
		{"empty", []byte{}, ErrNoCertificate},
		{"missing", nil, fs.ErrNotExist},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".pem")
			if tt.content != nil {
				if err := os.WriteFile(path, tt.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			p, err := Load(path)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (p != nil) {
				t.Fatalf("Load = %v, %v; want err %v", p, err, tt.wantErr)
			}
		})
	}
}
