package rpc

import (
	"errors"
	"slices"
	"testing"
)

func TestPool(t *testing.T) {
	p := NewPool()
	a, err := p.Client("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := p.Client("127.0.0.1:1")
	b, _ := p.Client("127.0.0.1:2")
	if a != again || a == b {
		t.Fatal("want one client per address")
	}
	closed := p.Retain(map[string]bool{"127.0.0.1:2": true})
	if !slices.Equal(closed, []string{"127.0.0.1:1"}) {
		t.Fatalf("Retain closed %v, want [127.0.0.1:1]", closed)
	}
	if c, _ := p.Client("127.0.0.1:1"); c == a {
		t.Fatal("a retained-out address kept its closed client")
	}
	p.Close()
	if _, err := p.Client("127.0.0.1:3"); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("after Close: got %v, want ErrPoolClosed", err)
	}
}
