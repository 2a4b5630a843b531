package component_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"otrdesk.im/otrdesk/component"
	"otrdesk.im/otrdesk/store"
)

// A component is created from the configuration and a store; it connects
// when Run is called (cmd/otrdesk runs it beside the HTTP server, which
// answers /readyz from Ready and the skin JSON's "available" from
// Available).
func ExampleNew() {
	dir, err := os.MkdirTemp("", "otrdesk-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(filepath.Join(dir, "otrdesk.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	c, err := component.New(component.Config{
		Domain: "chat.example.org",
		Server: "127.0.0.1:5347",
		Secret: "from component.secret_file",
	}, st)
	if err != nil {
		log.Fatal(err)
	}
	ok, reason := c.Ready()
	fmt.Println(ok, reason)
	fmt.Println(c.Available("help"))

	_, err = component.New(component.Config{Domain: "chat.example.org", Server: "127.0.0.1:5347"}, st)
	fmt.Println(err)
	// Output:
	// false not connected yet
	// false
	// component: the component secret is empty; set component.secret_file or OTRDESK_COMPONENT_SECRET
}
