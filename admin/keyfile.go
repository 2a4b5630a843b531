package admin

import (
	"fmt"

	"otrdesk.im/otrdesk/otr"
)

// encodePrivateKey renders k in the requested client format.
func encodePrivateKey(k *otr.PrivateKey, r KeyRequest, skins []string) ([]byte, error) {
	return nil, fmt.Errorf("%w: %s", errFormatPending, r.Format)
}
