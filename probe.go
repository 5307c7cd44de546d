package tradeunit

// ProbeMchid is the reserved merchant of the health checker's synthetic
// orders. A probe runs a real order (create, query, close) through a unit's
// normal path, so that a unit whose storage is read-only, full or slow is
// seen as such; the orders it leaves belong to this merchant alone.
//
// No API key can map to it (the proxy refuses it as a merchant), so probe
// orders never show up in a merchant's data, and units delete them after a
// while (Store.DeleteProbeOrders). The leading underscore keeps it apart from
// every real merchant number, which are digits.
const ProbeMchid = "_tradeunit_probe"

// IsProbe reports whether mchid is the health checker's probe merchant.
func IsProbe(mchid string) bool { return mchid == ProbeMchid }
