// Command vsphere-sim is Ferry's vSphere test server: govmomi's vCenter
// simulator (simulator.VPX) with a small HTTP layer in front of it that
// behaves more like a real vCenter (datastore file access needs a session
// cookie, only one user/password is accepted) and that lets tests observe
// and disturb the datastore transfers (/ferry-sim/stats, /ferry-sim/faults).
//
// Usage:
//
//	vsphere-sim --listen 127.0.0.1:0 --state-file PATH [--config CONFIG.json]
//	            [--dir DATASTORE_PARENT_DIR] [--exit-with-stdin] [--keep-dirs]
//
// See README.md in this folder for the config and state-file formats.
package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
)

const (
	defaultUser     = "administrator@vsphere.local"
	defaultPassword = "ferry-sim-pass"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("vsphere-sim: ")

	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (host:port, port 0 picks a free one)")
	stateFile := flag.String("state-file", "", "where to write the JSON state once ready (required)")
	configFile := flag.String("config", "", "JSON file shaping the inventory (optional)")
	dir := flag.String("dir", "", "parent directory for the datastore directories (default $TMPDIR)")
	exitWithStdin := flag.Bool("exit-with-stdin", false, "exit when stdin reaches EOF")
	keepDirs := flag.Bool("keep-dirs", false, "do not delete the datastore directories on exit")
	flag.Parse()

	if *stateFile == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: vsphere-sim --listen HOST:PORT --state-file PATH [--config CONFIG.json] [--dir DIR] [--exit-with-stdin] [--keep-dirs]")
		os.Exit(2)
	}

	if err := run(*listen, *stateFile, *configFile, *dir, *exitWithStdin, *keepDirs); err != nil {
		log.Printf("error: %v", err)
		os.Exit(1)
	}
}

func run(listen, stateFile, configFile, dir string, exitWithStdin, keepDirs bool) error {
	// Catch signals from the start so that the datastore directories are
	// cleaned up even if we are stopped while still setting up.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)

	cfg, err := loadConfig(configFile)
	if err != nil {
		return err
	}

	if dir != "" {
		// The model creates each datastore with ioutil.TempDir("", ...).
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		os.Setenv("TMPDIR", abs)
	}

	// Listen first, so that a bad address fails before any work is done.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	addr := ln.Addr().(*net.TCPAddr)

	// Building the inventory allocates a lot and frees little: with
	// thousands of VMs the collector would run for a third of the startup
	// time. Collect less often until we are ready.
	gcPercent := debug.SetGCPercent(800)
	start := time.Now()
	phase := start
	timed := func(what string) {
		now := time.Now()
		log.Printf("startup: %s in %.2f s", what, now.Sub(phase).Seconds())
		phase = now
	}

	model := simulator.VPX()
	if cfg.VMCount != nil {
		model.Machine = *cfg.VMCount
	}
	if err := model.Create(); err != nil {
		ln.Close()
		return fmt.Errorf("creating the simulator model: %w", err)
	}
	timed(fmt.Sprintf("model (%d VMs) created", len(simulator.Map.All("VirtualMachine"))))
	cleanup := func() {
		if !keepDirs {
			model.Remove()
		}
	}

	svc := model.Service
	// SessionManager.Login accepts only the credentials in Service.Listen.User
	// (unless they are simulator.DefaultLogin, which means "anything").
	// NewServer registers all handlers on svc.ServeMux and starts its own
	// listener. We let it bind a throwaway loopback port, keep the mux, and
	// serve the mux ourselves, wrapped, on our listener.
	svc.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(cfg.User, cfg.Password)}
	throwaway := svc.NewServer()
	mux := svc.ServeMux
	throwaway.Close()

	cert, thumbprint, certPEM, err := makeCertificate(addr.IP)
	if err != nil {
		cleanup()
		ln.Close()
		return err
	}

	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	hostPort := net.JoinHostPort(host, strconv.Itoa(addr.Port))
	sdkURL := "https://" + hostPort + "/sdk"
	fixServerURLs(hostPort)
	simulator.Map.SessionManager().TLSCert = func() string {
		return base64.StdEncoding.EncodeToString(cert.Certificate[0])
	}

	// Shape the inventory through the simulator's own API, in process.
	ctx := context.Background()
	client, err := vim25.NewClient(ctx, svc)
	if err != nil {
		cleanup()
		ln.Close()
		return fmt.Errorf("in-process client: %w", err)
	}
	if err := customise(ctx, client, cfg); err != nil {
		cleanup()
		ln.Close()
		return err
	}
	timed("inventory customised")
	st, err := collectState(ctx, client)
	if err != nil {
		cleanup()
		ln.Close()
		return err
	}
	timed("state collected")
	st.URL = sdkURL
	st.Thumbprint = thumbprint
	st.CertPEM = certPEM
	st.Username = cfg.User
	st.Password = cfg.Password
	st.Pid = os.Getpid()

	front := newFrontend(mux, cfg.cbtWindow())
	front.cbt.init()
	timed("disks registered")
	debug.SetGCPercent(gcPercent)
	server := &http.Server{
		Handler:  front,
		ErrorLog: log.New(ioutil.Discard, "", 0), // TLS handshake noise from probes
	}
	tlsListener := tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"http/1.1"},
	})
	serveErr := make(chan error, 1)
	go func() { serveErr <- server.Serve(tlsListener) }()

	select {
	case sig := <-sigs:
		log.Printf("stopping during startup: signal %s", sig)
		server.Close()
		cleanup()
		return nil
	default:
	}
	if err := writeStateFile(stateFile, st); err != nil {
		server.Close()
		cleanup()
		return err
	}
	fmt.Printf("vsphere-sim ready %s\n", sdkURL)
	os.Stdout.Sync()
	log.Printf("ready at %s (thumbprint %s), %d VMs, %.2f s after start", sdkURL, thumbprint, len(st.VMs), time.Since(start).Seconds())

	stop := make(chan string, 2)
	go func() { s := <-sigs; stop <- "signal " + s.String() }()
	if exitWithStdin {
		go func() {
			_, _ = io.Copy(ioutil.Discard, os.Stdin)
			stop <- "stdin closed"
		}()
	}

	var result error
	select {
	case why := <-stop:
		log.Printf("stopping: %s", why)
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			result = fmt.Errorf("serve: %w", err)
		}
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = server.Shutdown(shutdownCtx)
	cancel()
	server.Close()
	_ = os.Remove(stateFile)
	cleanup()
	return result
}

// fixServerURLs points the URLs NewServer advertised (for the throwaway
// listener) at our real address.
func fixServerURLs(hostPort string) {
	simulator.Map.SessionManager().ServiceHostName = hostPort
	m := simulator.Map.OptionManager()
	for i := range m.Setting {
		setting := m.Setting[i].GetOptionValue()
		s, ok := setting.Value.(string)
		if !ok || !(strings.HasSuffix(setting.Key, ".uri") || setting.Key == "vcsim.server.url") {
			continue
		}
		if u, err := url.Parse(s); err == nil {
			u.Scheme = "https"
			u.Host = hostPort
			setting.Value = u.String()
		}
	}
}
