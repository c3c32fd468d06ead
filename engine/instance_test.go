package engine_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/engine"
)

func TestInstanceLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "copy", t.TempDir())
	f.init("main")
	if err := f.e.InitVolume(ctx, "main", engine.InitOptions{}); !errors.Is(err, engine.ErrExists) {
		t.Fatalf("second init: got %v, want ErrExists", err)
	}
	if v := f.e.Version(); v == "" {
		t.Fatal("no version")
	}

	inst := f.start("main")
	port := inst.Port
	c := connect(t, inst)
	exec1(t, c, "CREATE TABLE t (x int)")
	exec1(t, c, "INSERT INTO t VALUES (1), (2)")
	// Passwords work over TCP for ordinary roles; the superuser has none.
	exec1(t, c, "CREATE ROLE alice LOGIN PASSWORD 'secret-pw'")
	tcp, err := pgx.Connect(ctx, "host=127.0.0.1 port="+strconv.Itoa(port)+" user=alice password=secret-pw dbname=postgres sslmode=disable")
	if err != nil {
		t.Fatalf("alice over TCP with password: %v", err)
	}
	tcp.Close(ctx)
	if c2, err := pgx.Connect(ctx, "host=127.0.0.1 port="+strconv.Itoa(port)+" user=postgres dbname=postgres sslmode=disable"); err == nil {
		c2.Close(ctx)
		t.Fatal("superuser connected over TCP without a password")
	}
	c.Close(ctx)

	if err := f.e.Stop(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.e.Instance("main"); ok {
		t.Fatal("instance still reported after stop")
	}
	if err := f.e.Stop(ctx, "main"); err != nil {
		t.Fatalf("stop of a stopped instance: %v", err)
	}

	// Restart on the same port keeps the data.
	inst, err = f.e.Start(ctx, "main", engine.InstanceSpec{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	if inst.Port != port {
		t.Fatalf("port %d, want %d", inst.Port, port)
	}
	c = connect(t, inst)
	if n := queryInt(t, c, "SELECT count(*) FROM t"); n != 2 {
		t.Fatalf("rows after restart: %d", n)
	}
	c.Close(ctx)

	// A new engine over the same data dir (a daemon restart) finds and
	// adopts the running instance.
	e2 := f.open(nil)
	got, ok := e2.Instance("main")
	if !ok {
		t.Fatal("new engine does not see the running instance")
	}
	if got.PID != inst.PID || got.Port != port || got.SocketDir != inst.SocketDir || got.Superuser != "postgres" {
		t.Fatalf("adopted %+v, want %+v", got, inst)
	}
	adopted, err := e2.Start(ctx, "main", engine.InstanceSpec{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	if adopted.PID != inst.PID {
		t.Fatalf("Start started a second postmaster (pid %d, running %d)", adopted.PID, inst.PID)
	}
	c = connect(t, adopted)
	if n := queryInt(t, c, "SELECT 1"); n != 1 {
		t.Fatal("query on adopted instance")
	}
	c.Close(ctx)
	if err := e2.Stop(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.e.Instance("main"); ok {
		t.Fatal("first engine still sees the instance the second stopped")
	}

	// A start that fails says why, from the server log, and leaves nothing
	// running.
	_, err = f.e.Start(ctx, "main", engine.InstanceSpec{Port: port, Settings: map[string]string{"shared_buffers": "lots"}})
	if err == nil || !strings.Contains(err.Error(), "shared_buffers") {
		t.Fatalf("start with a bad setting: got %v, want an error quoting the log", err)
	}
	if _, ok := f.e.Instance("main"); ok {
		t.Fatal("instance running after a failed start")
	}
	if _, err = f.e.Start(ctx, "main", engine.InstanceSpec{Port: port, Settings: map[string]string{"port": "1"}}); err == nil {
		t.Fatal("start accepted a managed setting")
	}

	if err := f.e.Destroy(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	if err := f.e.Destroy(ctx, "main"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("destroy twice: %v", err)
	}
	mustNotExist(t, f, "main")
}
