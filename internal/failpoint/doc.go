// Package failpoint names the boundaries where tests inject faults: the
// filesystem, the transport, a job executor's output. It wraps etcd's gofail
// runtime (go.etcd.io/gofail/runtime), so a failpoint is inert unless the
// GOFAIL_FAILPOINTS environment variable names it (for a test that runs
// the sos binary) or a test in the same process enables it with Enable.
//
// A failpoint is evaluated where the fault would happen:
//
//	if v, ok := failpoint.Eval(failpoint.SyncAnswerDrop); ok { ... act on v ... }
//
// The terms are gofail's: "return", `return("forged")`, "1*return" (once),
// "50%return", "sleep(100)", "panic", "off"; several failpoints are
// separated by ";" in GOFAIL_FAILPOINTS:
//
//	GOFAIL_FAILPOINTS='sos/net/send-drop=return;sos/job/forge-output=1*return' sos run ...
//
// Failpoints never sit inside consensus logic (block execution, state
// transitions): only at the edges where the real world can fail the same
// way. Every name is a constant below, so the catalog is in one place.
//
// gofail keeps its registry in process-wide state and refuses to register
// a name twice; this package registers each name on its first evaluation,
// once, so callers need no package-level variables of their own.
package failpoint
