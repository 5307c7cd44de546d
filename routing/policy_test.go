package routing

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"tradeunit"
)

// policyDoc returns the JSON of a table with units 1 (normal), 2 (key) and
// 3 (prerelease) and the given policy fields.
func policyDoc(t *testing.T, policy map[string]any) []byte {
	t.Helper()
	doc := map[string]any{"revision": 1, "units": []map[string]any{
		unitDoc(1),
		with(unitDoc(2), func(u map[string]any) { u["partition"] = "key" }),
		with(unitDoc(3), func(u map[string]any) { u["partition"] = "prerelease" }),
	}}
	for k, v := range policy {
		doc[k] = v
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParsePolicy(t *testing.T) {
	canary := func(label, value string, share any) map[string]any {
		return map[string]any{"partitions": map[string]any{
			"normal": map[string]any{"canary": map[string]any{"label": label, "value": value, "share": share}}}}
	}
	tests := []struct {
		name    string
		policy  map[string]any
		wantErr string // part of the message; "" for a good document
	}{
		{"none", nil, ""},
		{"full", map[string]any{
			"partitions": map[string]any{
				"key":    map[string]any{"on_no_unit": "spill", "spill_to": "normal"},
				"normal": map[string]any{"on_no_unit": "refuse", "canary": map[string]any{"label": "release", "value": "v2", "share": 0.01}},
				"cold":   map[string]any{},
			},
			"merchants": map[string]any{"1900000002": "key", "1900000003": "prerelease", "1900000004": "cold"},
			"blacklist": []map[string]any{{"unit": 3, "reason": "disk swap", "by": "alice",
				"since": "2026-11-21T10:00:00Z", "until": "2026-11-21T11:00:00Z"}},
		}, ""},
		{"canary share 0 and 1", canary("release", "v2", 1), ""},

		{"unknown on_no_unit", map[string]any{"partitions": map[string]any{"key": map[string]any{"on_no_unit": "drop"}}},
			`partitions["key"].on_no_unit "drop" must be "refuse" or "spill"`},
		{"spill without target", map[string]any{"partitions": map[string]any{"key": map[string]any{"on_no_unit": "spill"}}},
			`partitions["key"].spill_to: on_no_unit "spill" needs a partition`},
		{"spill to itself", map[string]any{"partitions": map[string]any{"key": map[string]any{"on_no_unit": "spill", "spill_to": "key"}}},
			`partitions["key"].spill_to: a partition cannot spill to itself`},
		{"spill to unknown", map[string]any{"partitions": map[string]any{"key": map[string]any{"on_no_unit": "spill", "spill_to": "vip"}}},
			`partitions["key"].spill_to: unknown partition "vip"`},
		{"spill into prerelease", map[string]any{"partitions": map[string]any{"key": map[string]any{"on_no_unit": "spill", "spill_to": "prerelease"}}},
			`nothing may spill into "prerelease"`},
		{"spill_to with refuse", map[string]any{"partitions": map[string]any{"key": map[string]any{"spill_to": "normal"}}},
			`partitions["key"].spill_to is set but on_no_unit is not "spill"`},
		{"bad partition name", map[string]any{"partitions": map[string]any{"Key": map[string]any{}}},
			`partitions["Key"]: name must match`},
		{"canary share above 1", canary("release", "v2", 1.5), `partitions["normal"].canary.share 1.5 must be between 0 and 1`},
		{"canary share negative", canary("release", "v2", -0.1), `canary.share -0.1 must be between 0 and 1`},
		{"canary without label", canary("", "v2", 0.1), `partitions["normal"].canary.label "" must match`},
		{"canary bad value", canary("release", "v 2", 0.1), `partitions["normal"].canary.value "v 2" must match`},
		{"merchant to unknown partition", map[string]any{"merchants": map[string]any{"1900000002": "vip"}},
			`merchants["1900000002"]: partition "vip" has no unit and no policy`},
		{"bad merchant id", map[string]any{"merchants": map[string]any{"19 00": "key"}}, `merchants["19 00"]: mchid may hold only`},
		{"probe merchant", map[string]any{"merchants": map[string]any{tradeunit.ProbeMchid: "key"}},
			"reserved for the health checker"},
		{"blacklist unknown unit", map[string]any{"blacklist": []map[string]any{{"unit": 9, "reason": "x"}}},
			"blacklist[0]: unit 9 is not in the table"},
		{"blacklist twice", map[string]any{"blacklist": []map[string]any{{"unit": 1, "reason": "x"}, {"unit": 1, "reason": "y"}}},
			"blacklist[1]: unit 1 is listed twice"},
		{"blacklist without reason", map[string]any{"blacklist": []map[string]any{{"unit": 1, "reason": ""}}},
			"blacklist[0] (unit 1): reason must be 1 to 200 characters"},
		{"blacklist expiring before it starts", map[string]any{"blacklist": []map[string]any{{"unit": 1, "reason": "x",
			"since": "2026-11-21T10:00:00Z", "until": "2026-11-21T09:00:00Z"}}}, "blacklist[0] (unit 1): until"},
		{"unknown policy field", map[string]any{"partitions": map[string]any{"key": map[string]any{"spill": "normal"}}},
			`unknown field "spill"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(policyDoc(t, tt.policy))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if got := tradeunit.ErrorCode(err); got != tradeunit.CodeParamError {
				t.Fatalf("got code %v (%v), want %v", got, err, tradeunit.CodeParamError)
			}
			if got := tradeunit.ErrorMessage(err); !strings.Contains(got, tt.wantErr) {
				t.Errorf("got message %q, want it to contain %q", got, tt.wantErr)
			}
		})
	}
}

func TestPolicyLookups(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC)
	tbl, err := Parse(policyDoc(t, map[string]any{
		"partitions": map[string]any{"key": map[string]any{"on_no_unit": "spill", "spill_to": "normal"}},
		"merchants":  map[string]any{"1900000002": "key"},
		"blacklist": []map[string]any{
			{"unit": 3, "reason": "forever"},
			{"unit": 1, "reason": "until 11:00", "until": "2026-11-21T11:00:00Z"},
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := tbl.PartitionOf("1900000002"); got != "key" {
		t.Errorf("PartitionOf(mapped): got %q, want key", got)
	}
	if got := tbl.PartitionOf("1900000001"); got != DefaultPartition {
		t.Errorf("PartitionOf(unmapped): got %q, want %q", got, DefaultPartition)
	}
	if p := tbl.Policy("key"); p.OnNoUnit != Spill || p.SpillTo != "normal" {
		t.Errorf("Policy(key): got %+v", p)
	}
	if p := tbl.Policy("normal"); p.OnNoUnit != "" || p.Canary != nil {
		t.Errorf("Policy(normal): got %+v, want the zero policy", p)
	}
	if tbl.Blacklist[0].Unit != 1 {
		t.Errorf("blacklist not sorted by unit: %+v", tbl.Blacklist)
	}
	for _, tt := range []struct {
		unit tradeunit.UnitID
		at   time.Time
		want bool
	}{
		{1, now, true}, {1, now.Add(30 * time.Minute), false}, {3, now.Add(1000 * time.Hour), true}, {2, now, false},
	} {
		if _, got := tbl.Blacklisted(tt.unit, tt.at); got != tt.want {
			t.Errorf("Blacklisted(%d, %s): got %v, want %v", tt.unit, tt.at.Format(time.TimeOnly), got, tt.want)
		}
	}
	if got := tbl.PartitionNames(); !reflect.DeepEqual(got, []string{"key", "normal", "prerelease"}) {
		t.Errorf("PartitionNames: got %v", got)
	}
}

func TestPolicyEditsAndCopies(t *testing.T) {
	tbl, err := Parse(policyDoc(t, map[string]any{
		"partitions": map[string]any{"normal": map[string]any{"canary": map[string]any{"label": "release", "value": "v2", "share": 0.1}}},
		"merchants":  map[string]any{"1900000002": "key"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	c := tbl.Clone()
	c.Partitions["normal"].Canary.Share = 0.5
	c.Merchants["1900000002"] = "normal"
	if prev := c.SetBlacklist(BlacklistEntry{Unit: 2, Reason: "a"}); prev != nil {
		t.Fatalf("SetBlacklist on a new unit returned %+v", prev)
	}
	c.SetBlacklist(BlacklistEntry{Unit: 1, Reason: "b"})
	if prev := c.SetBlacklist(BlacklistEntry{Unit: 2, Reason: "c"}); prev == nil || prev.Reason != "a" {
		t.Fatalf("SetBlacklist replacing: got previous %+v, want reason a", prev)
	}
	if len(c.Blacklist) != 2 || c.Blacklist[0].Unit != 1 || c.Blacklist[1].Reason != "c" {
		t.Fatalf("blacklist after edits: %+v", c.Blacklist)
	}
	if tbl.Partitions["normal"].Canary.Share != 0.1 || tbl.Merchants["1900000002"] != "key" || len(tbl.Blacklist) != 0 {
		t.Fatal("editing a clone changed the original")
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatalf("parse marshalled table: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(back.Partitions, c.Partitions) || !reflect.DeepEqual(back.Merchants, c.Merchants) ||
		!reflect.DeepEqual(back.Blacklist, c.Blacklist) {
		t.Fatalf("round trip lost policy:\n%s", data)
	}
	if strings.Contains(string(data), `"until"`) {
		t.Errorf("an entry without expiry was written with an until:\n%s", data)
	}
	if removed := c.RemoveBlacklist(1); removed == nil || c.RemoveBlacklist(1) != nil || len(c.Blacklist) != 1 {
		t.Fatalf("RemoveBlacklist: got %+v, then %+v", removed, c.Blacklist)
	}
}
