package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/weir-ai/weir/extproc/vkey"
)

// runKey generates virtual keys and hashes them for the config, which
// stores keys only by hash.
//
//	weir key generate   prints a new key and its hash
//	weir key hash       reads keys on stdin, prints their hashes
func runKey(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: weir key generate | weir key hash < keys")
	}
	switch args[0] {
	case "generate":
		k, err := vkey.Generate()
		if err != nil {
			return err
		}
		// The only place a key is ever printed whole: it is shown once.
		fmt.Fprintf(stdout, "key:  %s\nhash: %s\n", k.Reveal(), k.Hash())
		return nil
	case "hash":
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			k, err := vkey.FromHeaders("", line)
			if err != nil {
				return fmt.Errorf("not a Weir key (sk-weir-...): %w", err)
			}
			fmt.Fprintln(stdout, k.Hash())
		}
		return sc.Err()
	}
	return fmt.Errorf("unknown key command %q", args[0])
}
