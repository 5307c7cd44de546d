package tradeunit

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNoSnapshot is Event.OrderEvent's error for an outbox row written before
// events carried the order's snapshot.
var ErrNoSnapshot = errors.New("outbox event carries no order snapshot (written before schema 1)")

// eventPayload is the outbox row's payload: the order right after the change
// and, for REFUND_CREATED, the refund.
type eventPayload struct {
	Order  *EventOrder  `json:"order"`
	Refund *EventRefund `json:"refund,omitempty"`
}

// EventPayload returns the payload an outbox row stores for a change that
// left the order as o at version v (and made refund r, if not nil).
func EventPayload(o EventOrder, r *EventRefund) ([]byte, error) {
	return json.Marshal(eventPayload{Order: &o, Refund: r})
}

// OrderEvent returns the event as it leaves unit for the bus. Errors:
// ErrNoSnapshot, or the payload's decoding error.
func (e Event) OrderEvent(unit UnitID) (OrderEvent, error) {
	var p eventPayload
	if err := json.Unmarshal([]byte(e.Payload), &p); err != nil {
		return OrderEvent{}, fmt.Errorf("outbox event %d: %w", e.ID, err)
	}
	if p.Order == nil {
		return OrderEvent{}, fmt.Errorf("outbox event %d: %w", e.ID, ErrNoSnapshot)
	}
	return OrderEvent{Schema: EventSchema, ID: EventID(unit, e.ID), Unit: unit, Seq: e.ID, Type: e.Type,
		Time: e.Time, Order: *p.Order, Refund: p.Refund}, nil
}
