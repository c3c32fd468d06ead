package engine

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Redirect is the kernel path to running branches: an nftables DNAT rule
// sends new TCP connections for a branch's port on the listen address
// straight to the postmaster's own listener on Internal (same port), so a
// running branch is reached at the speed of a direct connection. While a
// branch is suspended its port is not in the rule's set and the daemon's
// listener answers (and wakes it). Connections keep the path they began on
// (conntrack), whichever way the set changes meanwhile.
//
// Only loopback listen addresses are redirected: the rule sits in the output
// hook, which sees this host's own connections, and a DNAT of connections
// from elsewhere to a loopback address would need route_localnet.
type Redirect struct {
	listen, internal net.IP
	table            *nftables.Table
	set              *nftables.Set

	mu sync.Mutex
}

// redirectTable names the daemon's nftables table; one daemon per network
// namespace owns it.
const redirectTable = "pgtwin"

// NewRedirect installs a fresh table (replacing one a previous daemon left)
// that redirects listen:port to internal:port for the ports added later.
// It fails when nftables cannot be used here (no CAP_NET_ADMIN, no
// nf_tables), and the caller then keeps to the user-space proxy.
func NewRedirect(listen string) (*Redirect, error) {
	ip := net.ParseIP(listen).To4()
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen address %s is not an IPv4 loopback address", listen)
	}
	r := &Redirect{listen: ip, internal: InternalAddress(ip)}
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	old := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: redirectTable}
	if _, err := c.ListTableOfFamily(redirectTable, nftables.TableFamilyIPv4); err == nil {
		c.DelTable(old)
	}
	r.table = c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: redirectTable})
	prio := nftables.ChainPriorityNATDest
	ch := c.AddChain(&nftables.Chain{Name: "output", Table: r.table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: prio})
	r.set = &nftables.Set{Table: r.table, Name: "running", KeyType: nftables.TypeInetService}
	if err := c.AddSet(r.set, nil); err != nil {
		return nil, fmt.Errorf("nftables set: %w", err)
	}
	c.AddRule(&nftables.Rule{Table: r.table, Chain: ch, Exprs: []expr.Any{
		// ip daddr == listen
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(ip)},
		// meta l4proto tcp
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		// tcp dport @running
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: r.set.Name, SetID: r.set.ID},
		// dnat to internal
		&expr.Immediate{Register: 1, Data: []byte(r.internal)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	}})
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("nftables: install table %s: %w", redirectTable, err)
	}
	return r, nil
}

// InternalAddress is where running branches' postmasters listen on TCP when
// redirected: the loopback address after the listen address (127.0.0.1 →
// 127.0.0.2), same port, so the unix socket keeps its name.
func InternalAddress(listen net.IP) net.IP {
	ip := append(net.IP(nil), listen.To4()...)
	ip[3]++
	if ip[3] == 0 || ip[3] == 255 {
		ip[3] = 2
	}
	return ip
}

// Internal is the address running branches listen on.
func (r *Redirect) Internal() string { return r.internal.String() }

// On sends new connections for port to the postmaster.
func (r *Redirect) On(port int) error { return r.change(port, true) }

// Off sends new connections for port to the daemon's listener again.
func (r *Redirect) Off(port int) error { return r.change(port, false) }

func (r *Redirect) change(port int, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	el := []nftables.SetElement{{Key: binary.BigEndian.AppendUint16(nil, uint16(port))}}
	if on {
		err = c.SetAddElements(r.set, el)
	} else {
		err = c.SetDeleteElements(r.set, el)
	}
	if err == nil {
		err = c.Flush()
	}
	if err != nil && !on && errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nftables: redirect port %d on=%v: %w", port, on, err)
	}
	return nil
}

// Close removes the table. Connections already redirected go on.
func (r *Redirect) Close() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	c.DelTable(r.table)
	return c.Flush()
}

// Conns counts, by port, the TCP connections the redirect may have taken:
// those open on the internal address (redirected, or made to it directly),
// from the moment the kernel has a socket for them, before postgres has
// accepted them; and this host's connections to the listen address still in
// their handshake, whose SYN may have been redirected and not yet arrived.
func (r *Redirect) Conns() (map[int]int, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	internal, listen := procAddr(r.internal), procAddr(r.listen)
	out := map[int]int{}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// sl local_address rem_address st ...
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 {
			continue
		}
		addr, portHex, _ := strings.Cut(fs[1], ":")
		switch fs[3] {
		case "0A", "06", "07": // LISTEN, TIME_WAIT, CLOSE
			continue
		case "02": // SYN_SENT: count it by where it is going
			addr, portHex, _ = strings.Cut(fs[2], ":")
			if addr != listen && addr != internal {
				continue
			}
		default:
			if addr != internal {
				continue
			}
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			continue
		}
		out[int(port)]++
	}
	return out, sc.Err()
}

// procAddr is an IPv4 address as /proc/net/tcp prints it (host order hex).
func procAddr(ip net.IP) string {
	ip = ip.To4()
	return strings.ToUpper(hex.EncodeToString([]byte{ip[3], ip[2], ip[1], ip[0]}))
}
