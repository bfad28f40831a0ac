// etcd as the go.etcd.io/etcd/v3 module's main.go builds it (Apache-2.0), at
// the etcd server version that the pinned Kubernetes release requires.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
