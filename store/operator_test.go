package store

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestOperatorCRUD(t *testing.T) {
	s, _ := newStore(t)
	if _, err := s.Operator("alice@example.org"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Operator before put: %v, want ErrNotFound", err)
	}
	if err := s.PutOperator(Operator{JID: "Alice@Example.org", OnDuty: true, Nick: "Alice Ä."}); err != nil {
		t.Fatalf("PutOperator: %v", err)
	}
	want := Operator{JID: "alice@example.org", OnDuty: true, Nick: "Alice Ä."}
	got, err := s.Operator("alice@EXAMPLE.org")
	if err != nil || got != want {
		t.Fatalf("Operator = %+v, %v; want %+v", got, err, want)
	}
	want.OnDuty, want.Nick = false, ""
	if err := s.PutOperator(want); err != nil {
		t.Fatalf("PutOperator off duty: %v", err)
	}
	if got, _ := s.Operator("alice@example.org"); got != want {
		t.Fatalf("Operator after update = %+v, want %+v", got, want)
	}
	if err := s.PutOperator(Operator{JID: "bob@example.org"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Operators()
	if err != nil || !reflect.DeepEqual(all, []Operator{want, {JID: "bob@example.org"}}) {
		t.Fatalf("Operators = %+v, %v", all, err)
	}
	if err := s.DeleteOperator("bob@example.org"); err != nil {
		t.Fatalf("DeleteOperator: %v", err)
	}
	wantErr(t, s.DeleteOperator("bob@example.org"), ErrNotFound, "bob@example.org")
}

func TestOperatorValidation(t *testing.T) {
	tests := []struct {
		name string
		op   Operator
		err  string
	}{
		{"bare", Operator{JID: "alice@example.org"}, ""},
		{"resource", Operator{JID: "alice@example.org/pidgin"}, "use the bare JID alice@example.org"},
		{"empty", Operator{JID: ""}, "not a JID"},
		{"domain", Operator{JID: "example.org"}, "no local part"},
		{"long nick", Operator{JID: "alice@example.org", Nick: strings.Repeat("n", 65)}, "at most 64"},
		{"nick with newline", Operator{JID: "alice@example.org", Nick: "a\nb"}, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			err := s.PutOperator(tt.op)
			if tt.err == "" {
				wantErr(t, err, nil, "")
				return
			}
			wantErr(t, err, ErrInvalid, tt.err)
			if all, _ := s.Operators(); len(all) != 0 {
				t.Fatalf("invalid operator stored: %+v", all)
			}
		})
	}
}
