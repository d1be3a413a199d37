// Command k8s is a multi-call binary: the name it is started under (argv[0]) picks the Kubernetes
// component it becomes, as hyperkube and busybox did. Each component still runs as its own process,
// so upstream process-global state (signal handlers, logging, feature gates, metrics) is never shared.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"golang.org/x/sys/unix"
	"k8s.io/component-base/cli"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

// dieWithParentEnv, set to the pid of the starting process, asks a component to be killed when that
// process dies, so a test run that is itself killed leaves no control plane behind.
// PR_SET_PDEATHSIG survives execve, which is how kwok (a separate binary) gets it too.
const dieWithParentEnv = "SPILLWAY_HARNESS_DIE_WITH_PARENT"

func main() {
	if parent := os.Getenv(dieWithParentEnv); parent != "" {
		dieWithParent(parent)
	}
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "k8s" && len(args) > 0 {
		name, args = args[0], args[1:]
	}
	switch name {
	case "etcd":
		etcdmain.Main(append([]string{"etcd"}, args...))
	case "kube-apiserver":
		run(apiserver.NewAPIServerCommand(), args)
	case "kube-controller-manager":
		run(controllermanager.NewControllerManagerCommand(), args)
	case "kube-scheduler":
		run(scheduler.NewSchedulerCommand(), args)
	case "kubectl":
		// kubectl reads os.Args itself (plugins), so it is dispatched only by argv[0].
		if err := cli.RunNoErrOutput(kubectl.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err)
		}
	case "exec":
		// exec <binary> <args...>: run another program (kwok) with the same die-with-parent guarantee.
		if len(args) == 0 {
			fail("exec: missing program")
		}
		if err := syscall.Exec(args[0], args, os.Environ()); err != nil {
			fail(fmt.Sprintf("exec %s: %v", args[0], err))
		}
	default:
		fail(fmt.Sprintf("unknown personality %q; start as etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl or `k8s exec <binary>`", name))
	}
}

func run(c *cobra.Command, args []string) {
	c.SetArgs(args)
	os.Exit(cli.Run(c))
}

func dieWithParent(parent string) {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		fail(fmt.Sprintf("prctl(PR_SET_PDEATHSIG): %v", err))
	}
	// The parent may have died before prctl took effect; then we have been re-parented already.
	if fmt.Sprint(os.Getppid()) != parent {
		os.Exit(1)
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "k8s:", msg)
	os.Exit(2)
}
