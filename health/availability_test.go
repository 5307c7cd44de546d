package health

import "testing"

func TestAvailability(t *testing.T) {
	for _, tt := range []struct {
		name        string
		creates     []float64
		all         []float64
		attempts    int
		create, ord float64
	}{
		{"every unit up", []float64{1, 1, 1}, []float64{1, 1, 1}, 3, 1, 1},
		{"one of four down: creates retry, a quarter of orders wait", []float64{0, 1, 1, 1}, []float64{0, 1, 1, 1}, 3, 1, 0.75},
		{"three of four down and three attempts: the worst three", []float64{0, 0, 0, 1}, []float64{0, 0, 0, 1}, 3, 0, 0.25},
		{"independent units at 99%", []float64{0.99, 0.99, 0.99}, []float64{0.99, 0.99, 0.99}, 3, 0.999999, 0.99},
		{"one attempt", []float64{0.9, 0.99}, []float64{0.9, 0.99}, 1, 0.9, 0.945},
		{"warm units serve orders, not creates", []float64{1}, []float64{0.5, 1}, 3, 1, 0.75},
		{"no unit takes new orders", nil, []float64{1}, 3, 0, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := availability(tt.creates, tt.all, tt.attempts)
			if got.Create != tt.create || got.Order != tt.ord {
				t.Fatalf("availability = %+v, want create %v order %v", got, tt.create, tt.ord)
			}
		})
	}
}
