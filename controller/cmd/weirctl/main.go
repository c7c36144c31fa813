// Command weirctl renders Weir's config for the control side.
//
//	weirctl envoy-config --config FILE   print an Envoy bootstrap
//	weirctl controller [flags]           run the Kubernetes controller
//
// It is a binary of its own so that the extproc (bin/weir) does not link
// Envoy's whole config API: registering those protobuf types at start-up
// alone kept about 10 MiB of the extproc's binary resident.
package main

import (
	"fmt"
	"os"
)

const usage = `weirctl: Weir's control-side tools

Usage:
  weirctl envoy-config --config FILE [--extproc ADDR] [--listen ADDR]
  weirctl controller [--config FILE] [--xds-listen ADDR] [--leader-elect]

Run 'weirctl <command> --help' for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "envoy-config":
		err = runEnvoyConfig(os.Args[2:], os.Stdout, os.Stderr)
	case "controller":
		err = runController(os.Args[2:], os.Stderr)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "weirctl: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "weirctl %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
