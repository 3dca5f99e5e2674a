package fakehub

import (
	"fmt"
	"runtime/debug"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// recoverHook is deferred at every hook and callback entry point that does
// work: a panic there (a bug in fakehub or in a cloud-side handler) is
// logged at Error with its stack and closes only cl's connection (nil: none)
// instead of the whole hub. With errp set, the hook returns
// packets.ErrRejectPacket, so mochi drops the packet and the connection;
// hooks returning bool return false (deny).
func (s *Server) recoverHook(where string, cl *mqtt.Client, errp *error) {
	v := recover()
	if v == nil {
		return
	}
	attrs := []any{"in", where, "panic", fmt.Sprint(v), "stack", string(debug.Stack())}
	if cl != nil {
		attrs = append(attrs, "clientId", clip(cl.ID), "remoteAddr", cl.Net.Remote)
	}
	s.log.Error("panic recovered; closing the connection", attrs...)
	if errp != nil {
		*errp = packets.ErrRejectPacket
	}
	if cl != nil {
		cl.Stop(fmt.Errorf("fakehub: internal error in %s", where))
	}
}
