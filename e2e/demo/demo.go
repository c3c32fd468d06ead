package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

func demo(ctx context.Context, o options) error {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); err == nil {
		step("a previous demo is in %s: removing it first", dir)
		if err := teardown(dir); err != nil {
			return err
		}
	}
	// postgres runs as its own user and must be able to reach into dir.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	os.Chmod(dir, 0o755)

	src, err := startSource(ctx, dir, o.customers)
	if err != nil {
		return err
	}
	cfgPath, err := writeConfig(dir, src)
	if err != nil {
		return err
	}
	step("start the daemon: %s serve --config %s", bin, cfgPath)
	if err := startDaemon(ctx, bin, dir, cfgPath); err != nil {
		return err
	}
	cli := func(args ...string) (string, error) {
		return pgtwinCLI(ctx, bin, filepath.Join(dir, "pgtwin.sock"), args...)
	}
	steps := [][]string{
		{"mask", "plan"},
		{"sync", "now", "--wait"},
		{"status"},
		{"branches", "create", "demo/alice"},
		{"branches", "list", "--tree"},
	}
	for _, args := range steps {
		step("pgtwin %s", strings.Join(args, " "))
		out, err := cli(args...)
		fmt.Print(out)
		if err != nil {
			return fmt.Errorf("pgtwin %s: %w (daemon log: %s)", strings.Join(args, " "), err, filepath.Join(dir, "daemon.log"))
		}
	}
	url, err := cli("connection-string", "demo/alice")
	if err != nil {
		return err
	}
	url = strings.TrimSpace(url)
	if err := sideBySide(ctx, src.url(), url); err != nil {
		return err
	}
	step("done")
	fmt.Printf("branch demo/alice:  psql '%s'\n", url)
	fmt.Printf("the CLI:            PGTWIN_SOCKET=%s %s branches list\n", filepath.Join(dir, "pgtwin.sock"), bin)
	fmt.Printf("remove everything:  make demo-stop\n")
	return nil
}

func writeConfig(dir string, src *source) (string, error) {
	cfg := fmt.Sprintf(`# written by make demo
[daemon]
socket = %q
data_dir = %q
log_level = "info"

[source]
url = %q

[sync]
mode = "dump"
schedule = "0 2 * * *"
parallel = 2

[engine]
# used only when %s is on neither btrfs nor XFS
pool_image_size = "8G"
port_range = "6500-6999"

[anonymize]
key_file = %q
on_unclassified_pii = "fail"

[anonymize.columns]
%s`, filepath.Join(dir, "pgtwin.sock"), filepath.Join(dir, "data"), src.url(), dir,
		filepath.Join(dir, "mask.key"), demoRules)
	p := filepath.Join(dir, "pgtwin.toml")
	return p, os.WriteFile(p, []byte(cfg), 0o600)
}

func startDaemon(ctx context.Context, bin, dir, cfgPath string) error {
	logf, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	os.WriteFile(filepath.Join(dir, "daemon.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	sock := filepath.Join(dir, "pgtwin.sock")
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("daemon exited at start (%v):\n%s", err, log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := pgtwinCLI(ctx, bin, sock, "status"); err == nil {
			return nil
		}
	}
	return fmt.Errorf("daemon not answering on %s after 60s (see %s)", sock, logf.Name())
}

func pgtwinCLI(ctx context.Context, bin, sock string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, append([]string{"--socket", sock}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// sideBySide prints the same customers from the source and from the branch.
func sideBySide(ctx context.Context, srcURL, branchURL string) error {
	// One row per customer: the card of their first paid order, if any.
	const q = `SELECT c.id, c.email, c.full_name, coalesce(c.phone, ''),
			coalesce((SELECT p.card_number FROM orders o JOIN payments p ON p.order_id = o.id
				WHERE o.customer_id = c.id ORDER BY o.id LIMIT 1), '')
		FROM customers c ORDER BY c.id LIMIT 5`
	rows := func(url string) ([][]string, error) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return nil, err
		}
		defer conn.Close(ctx)
		rs, err := conn.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		var out [][]string
		for rs.Next() {
			var id int64
			var a, b, c, d string
			if err := rs.Scan(&id, &a, &b, &c, &d); err != nil {
				return nil, err
			}
			out = append(out, []string{strconv.FormatInt(id, 10), a, b, c, d})
		}
		return out, rs.Err()
	}
	src, err := rows(srcURL)
	if err != nil {
		return fmt.Errorf("read source: %w", err)
	}
	br, err := rows(branchURL)
	if err != nil {
		return fmt.Errorf("read branch: %w", err)
	}
	step("the same customers: source (production stand-in) vs branch demo/alice (masked)")
	for i := range src {
		if i >= len(br) {
			break
		}
		fmt.Printf("  id %s\n", src[i][0])
		for j, label := range []string{"email", "name", "phone", "card"} {
			fmt.Printf("    %-6s %-40s → %s\n", label, src[i][j+1], br[i][j+1])
		}
	}
	return nil
}
