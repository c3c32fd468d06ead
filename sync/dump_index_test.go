package twinsync

import "testing"

func TestParseTOCRef(t *testing.T) {
	for _, c := range []struct {
		line string
		want tocRef
		ok   bool
	}{
		{"3350; 1259 16420 INDEX public customers_email postgres", tocRef{3350, 1259, 16420}, true},
		{"3338; 2606 16415 CONSTRAINT public customers customers_pkey postgres", tocRef{3338, 2606, 16415}, true},
		{"3360; 2606 16430 FK CONSTRAINT public orders orders_customer_id_fkey postgres", tocRef{3360, 2606, 16430}, true},
		{"; Archive created at 2026-12-01 11:40:00 UTC", tocRef{}, false},
		{"", tocRef{}, false},
		{"x; 1 2 TABLE", tocRef{}, false},
	} {
		got, ok := parseTOCRef(c.line)
		if ok != c.ok || got != c.want {
			t.Errorf("parseTOCRef(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

func TestMaintenanceSizing(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		avail    int64
		parallel int
		want     int64
	}{
		{0, 4, 256 * mb},                  // unknown
		{22 << 30, 2, 1408 * mb},          // this project's CI host
		{22 << 30, 4, 352 * mb},           // more builds at once, less each
		{1 << 30, 4, 64 * mb},             // floor
		{256 << 30, 1, 2 << 30},           // ceiling
		{8 << 30, 0, 2 << 30 /* p = 1 */}, // parallel unset
	} {
		if got := maintenanceMem(c.avail, c.parallel); got != c.want {
			t.Errorf("maintenanceMem(%d, %d) = %d MB, want %d MB", c.avail, c.parallel, got/mb, c.want/mb)
		}
	}
	for cpus, want := range map[int]int{1: 0, 2: 1, 4: 3, 16: 4} {
		if got := maintenanceWorkers(cpus); got != want {
			t.Errorf("maintenanceWorkers(%d) = %d, want %d", cpus, got, want)
		}
	}
	if memAvailable() <= 0 {
		t.Errorf("MemAvailable not read from /proc/meminfo")
	}
}
