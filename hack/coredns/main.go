// CoreDNS for the local cluster's real node, compiled with only the plugins the node's Corefile
// uses (hack/control-plane/build.sh builds it from the CoreDNS module pinned in versions.env).
// The order of Directives is the order a query passes through the plugins.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	dnsserver.Directives = []string{
		"bind",
		"ready",
		"errors",
		"cache",
		"hosts",
		"kubernetes",
		"loop",
		"forward",
	}
}

func main() {
	coremain.Run()
}
