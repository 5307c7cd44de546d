package sqlstore

import "context"

// Dump returns every row of every data table, in key order, as Sync reads
// them: what tests compare two storages with, and check a refused write
// against.
func (s *Store) Dump(ctx context.Context) (map[string][][]any, error) {
	out := make(map[string][][]any)
	for _, t := range dataTables {
		rows, err := t.readRange(ctx, s.read, nil, nil)
		if err != nil {
			return nil, err
		}
		out[t.name] = rows
	}
	return out, nil
}

// DataTables names the tables Sync copies.
func DataTables() []string {
	var names []string
	for _, t := range dataTables {
		names = append(names, t.name)
	}
	return names
}

// SetPassedFence sets the hook run in each write transaction just after
// the freeze fence let it through.
func (s *Store) SetPassedFence(fn func(op string)) { s.passedFence = fn }
