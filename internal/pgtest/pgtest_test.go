package pgtest

import "testing"

func TestStartQueryRestart(t *testing.T) {
	c := Start(t, Options{Logical: true, Databases: []string{"app"}})
	c.Exec(t, "app", "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)")
	if got := c.Psql(t, "app", "SELECT count(*) FROM t"); got != "2" {
		t.Fatalf("count = %q, want 2", got)
	}
	if got := c.Psql(t, "app", "SHOW wal_level"); got != "logical" {
		t.Fatalf("wal_level = %q, want logical", got)
	}
	c.Restart(t, true)
	if got := c.Psql(t, "app", "SELECT sum(id) FROM t"); got != "3" {
		t.Fatalf("sum after restart = %q, want 3", got)
	}
	c.Stop()
	if c.Running() {
		t.Fatal("still running after Stop")
	}
}
