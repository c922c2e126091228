// Command go_s2 writes and reads Snappy/S2 framed streams with klauspost/compress, the library
// go-winpmem and Velociraptor use, so the container tests can check memfs against real writer output
// and check the fixture builder's S2 encoder against a real decoder.
//
//	go_s2 write snappy|s2|s2index IN OUT   encode IN as go-winpmem does (4 MiB writes)
//	go_s2 decode IN OUT                    decode a Snappy or S2 framed stream
//	go_s2 seek IN RAW                      read an indexed stream at scattered offsets through its index
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go_s2:", err)
	os.Exit(1)
}

func write(mode, in, out string) error {
	data, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	var w io.WriteCloser
	switch mode {
	case "snappy":
		w = snappy.NewWriter(f)
	case "s2":
		w = s2.NewWriter(f)
	case "s2index":
		w = s2.NewWriter(f, s2.WriterAddIndex())
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	const piece = 4 << 20 // go-winpmem copies in BUFSIZE = 1024 pages
	for pos := 0; pos < len(data); pos += piece {
		end := pos + piece
		if end > len(data) {
			end = len(data)
		}
		if _, err := w.Write(data[pos:end]); err != nil {
			return err
		}
	}
	return w.Close()
}

func decode(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	o, err := os.Create(out)
	if err != nil {
		return err
	}
	defer o.Close()
	_, err = io.Copy(o, s2.NewReader(f))
	return err
}

func seek(in, rawPath string) error {
	raw, err := os.ReadFile(rawPath)
	if err != nil {
		return err
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	rs, err := s2.NewReader(f).ReadSeeker(true, nil)
	if err != nil {
		return err
	}
	buf := make([]byte, 5000)
	for off := int64(len(raw)) - 5000; off >= 0; off -= 777777 {
		if _, err := rs.Seek(off, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.ReadFull(rs, buf); err != nil {
			return err
		}
		if !bytes.Equal(buf, raw[off:off+5000]) {
			return fmt.Errorf("bytes at %d differ", off)
		}
	}
	fmt.Println("ok")
	return nil
}

func main() {
	var err error
	switch {
	case len(os.Args) == 5 && os.Args[1] == "write":
		err = write(os.Args[2], os.Args[3], os.Args[4])
	case len(os.Args) == 4 && os.Args[1] == "decode":
		err = decode(os.Args[2], os.Args[3])
	case len(os.Args) == 4 && os.Args[1] == "seek":
		err = seek(os.Args[2], os.Args[3])
	default:
		err = fmt.Errorf("usage: go_s2 write snappy|s2|s2index IN OUT | decode IN OUT | seek IN RAW")
	}
	if err != nil {
		fail(err)
	}
}
