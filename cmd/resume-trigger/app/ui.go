package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/argocontroller/resume-trigger/internal/ui"
)

// listenUI opens --ui-address. The page acts with each person's token and never with the server's
// credentials: the UI is handed the server's config only to know where the API server is and how to trust it.
func (a *App) listenUI(ctx context.Context) error {
	h, err := ui.New(ui.Config{API: a.config, Log: a.log, TLS: a.certs != nil})
	if err != nil {
		return err
	}
	a.ui = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// A release follows its Resume for up to ui.DefaultReleaseWait before the page is written.
		WriteTimeout:   ui.DefaultReleaseWait + 15*time.Second,
		IdleTimeout:    time.Minute,
		MaxHeaderBytes: ui.MaxHeaderBytes,
	}
	if a.certs != nil {
		a.ui.TLSConfig = &tls.Config{GetCertificate: a.certs.GetCertificate, MinVersion: tls.VersionTLS12}
	} else {
		a.log.Warn("--ui-address without --tls-cert-file: the page carries people's bearer tokens in plain text; serve it only behind a proxy that terminates TLS")
	}
	var lc net.ListenConfig
	if a.uiLn, err = lc.Listen(ctx, "tcp", a.opts.UI.Address); err != nil {
		return fmt.Errorf("listen on --ui-address: %w", err)
	}
	return nil
}

// serveUI serves the web page until it is shut down.
func (a *App) serveUI() error {
	if a.ui.TLSConfig != nil {
		return a.ui.ServeTLS(a.uiLn, "", "")
	}
	return a.ui.Serve(a.uiLn)
}

// UIAddr is the address of the web page, empty when it is off.
func (a *App) UIAddr() string {
	if a.uiLn == nil {
		return ""
	}
	return a.uiLn.Addr().String()
}
