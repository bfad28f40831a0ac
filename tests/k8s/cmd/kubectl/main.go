// kubectl as upstream's cmd/kubectl/kubectl.go builds it (k8s.io/kubernetes,
// Apache-2.0): only the module around it is ours.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"

	_ "k8s.io/client-go/plugin/pkg/client/auth" // client auth plugins
)

func main() {
	// Verbosity is set before the command is built, as upstream does, so
	// klog works while kubectl reads .kuberc and looks for plugins.
	logs.GlogSetter(cmd.GetLogVerbosity(os.Args)) // nolint:errcheck
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
