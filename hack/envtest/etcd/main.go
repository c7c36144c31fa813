// Command etcd is etcd's server, built from the go.etcd.io/etcd/server/v3
// module named in go.mod, for controller-runtime's envtest (make
// envtest-assets). etcdmain.Main is the whole of etcd's own main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
