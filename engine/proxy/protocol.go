package proxy

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Request codes of the first packet (PostgreSQL frontend/backend protocol).
const (
	codeCancel   = 80877102
	codeSSL      = 80877103
	codeGSSENC   = 80877104
	protoMajor3  = 3
	maxStartup   = 10000 // the server's MAX_STARTUP_PACKET_LENGTH
	minStartup   = 8
	cancelMinLen = 16
)

// SQLSTATEs the proxy answers with.
const (
	stateInvalidAuth      = "28000" // invalid_authorization_specification
	stateCannotConnectNow = "57P03" // cannot_connect_now
	stateProtocol         = "08P01" // protocol_violation
	stateUnsupported      = "0A000" // feature_not_supported
)

// readPacket reads one untyped first-phase packet: int32 length (itself
// included), then the body. It returns the whole packet as sent and its code.
func readPacket(r io.Reader) (raw []byte, code uint32, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return nil, 0, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < minStartup || n > maxStartup {
		return nil, 0, fmt.Errorf("invalid startup packet length %d", n)
	}
	raw = make([]byte, n)
	copy(raw, hdr[:4])
	if _, err := io.ReadFull(r, raw[4:]); err != nil {
		return nil, 0, err
	}
	return raw, binary.BigEndian.Uint32(raw[4:8]), nil
}

// startupParams parses the key/value pairs of a StartupMessage.
func startupParams(raw []byte) (map[string]string, error) {
	params := map[string]string{}
	b := raw[8:]
	for {
		i := indexNUL(b)
		if i < 0 {
			return nil, fmt.Errorf("startup packet not terminated")
		}
		if i == 0 {
			return params, nil
		}
		key := string(b[:i])
		b = b[i+1:]
		j := indexNUL(b)
		if j < 0 {
			return nil, fmt.Errorf("startup parameter %q has no value", key)
		}
		params[key] = string(b[:j])
		b = b[j+1:]
	}
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// errorResponse encodes a FATAL ErrorResponse that libpq prints as
// "FATAL:  <message>".
func errorResponse(sqlstate, message string) []byte {
	// Fields are C strings: a NUL inside would end the message early.
	message = strings.ReplaceAll(message, "\x00", " ")
	if len(message) > 2000 {
		message = message[:2000] + "…"
	}
	body := make([]byte, 0, 32+len(message))
	body = append(body, 'S')
	body = append(body, "FATAL\x00"...)
	body = append(body, 'V')
	body = append(body, "FATAL\x00"...)
	body = append(body, 'C')
	body = append(body, sqlstate...)
	body = append(body, 0, 'M')
	body = append(body, message...)
	body = append(body, 0, 0)
	msg := make([]byte, 5, 5+len(body))
	msg[0] = 'E'
	binary.BigEndian.PutUint32(msg[1:5], uint32(4+len(body)))
	return append(msg, body...)
}
