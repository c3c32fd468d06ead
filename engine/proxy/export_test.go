package proxy

import "io"

// SetPlainCopy makes sessions copy through a user-space buffer instead of
// letting io.Copy splice, for comparison in benchmarks.
func SetPlainCopy(on bool) {
	if !on {
		copyConn = io.Copy
		return
	}
	copyConn = func(dst io.Writer, src io.Reader) (int64, error) {
		return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, 32<<10))
	}
}
