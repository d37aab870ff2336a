package main

import (
	"fmt"
	"io"

	"github.com/parapet-sbc/parapet/certs"
)

func cmdCerts(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "selfsigned" {
		fmt.Fprint(stderr, "Usage: parapet certs selfsigned -host NAME -o DIR [-force]\n")
		return exit(2, nil)
	}
	fs := newFlags("certs selfsigned", stderr, "Usage: parapet certs selfsigned -host NAME -o DIR [-force]\n\nWrite a lab CA (ca.pem, ca.key) and a certificate for NAME signed by it\n(NAME.pem, NAME.key). For labs and tests, not for production.")
	host := fs.String("host", "", "host name or IP address the certificate is for")
	dir := fs.String("o", "", "output `directory`")
	force := fs.Bool("force", false, "overwrite existing files")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *host == "" || *dir == "" {
		fs.Usage()
		return exit(2, fmt.Errorf("certs selfsigned needs -host and -o"))
	}
	files, err := certs.WriteSelfSigned(*host, *dir, *force)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintln(stdout, "wrote", f)
	}
	return nil
}
