package component

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the component's Prometheus series. Labels carry skin names,
// directions, states and reasons: never a body or a JID.
type metrics struct {
	relayedC *prometheus.CounterVec // direction (to-operator, to-visitor), OTR kind
	dropsC   *prometheus.CounterVec // reason
	queueG   *prometheus.GaugeVec   // skin
	chatsG   *prometheus.GaugeVec   // state
	dutyG    *prometheus.GaugeVec   // skin
	conns    prometheus.Counter     // successful handshakes

	otrG       *prometheus.GaugeVec // chats by OTR state
	akeSeconds prometheus.Histogram
	stalls     prometheus.Counter
	repins     prometheus.Counter
	resumes    prometheus.Counter // chats resumed by a new login (resume.go)
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		relayedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "otrdesk", Name: "relayed_stanzas_total",
			Help: "Messages relayed between visitors and operators, by direction and OTR kind.",
		}, []string{"direction", "kind"}),
		dropsC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "otrdesk", Name: "dropped_stanzas_total",
			Help: "Stanzas not relayed, by reason.",
		}, []string{"reason"}),
		queueG: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "otrdesk", Name: "queue_length",
			Help: "Visitors waiting for an operator, per skin.",
		}, []string{"skin"}),
		chatsG: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "otrdesk", Name: "chats",
			Help: "Active chats by state.",
		}, []string{"state"}),
		dutyG: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "otrdesk", Name: "operators_on_duty",
			Help: "Operators on duty with at least one online resource, per skin.",
		}, []string{"skin"}),
		conns: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "otrdesk", Name: "component_connects_total",
			Help: "Successful XEP-0114 handshakes.",
		}),
		otrG: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "otrdesk", Name: "chats_otr",
			Help: "Active chats by OTR state seen on the wire (plaintext, ake, encrypted, finished).",
		}, []string{"state"}),
		akeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "otrdesk", Name: "ake_duration_seconds",
			Help:    "From the first AKE message to the Signature message.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "otrdesk", Name: "ake_stalled_total",
			Help: "AKEs restarted because a Reveal Signature got no Signature in time.",
		}),
		resumes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "otrdesk", Name: "chats_resumed_total",
			Help: "Chats taken back by their visitor after a new login, with the chat's resumption secret.",
		}),
		repins: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "otrdesk", Name: "repins_total",
			Help: "Chats moved to another resource of their operator (instance tag or new AKE).",
		}),
	}
	// Every reason starts at zero, so a dashboard sees the series before
	// the first drop.
	for d := range numDropReasons {
		m.dropsC.WithLabelValues(d.String())
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.relayedC, m.dropsC, m.queueG, m.chatsG, m.dutyG, m.conns, m.otrG, m.akeSeconds, m.stalls, m.repins, m.resumes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("component: registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) relay(direction string, msg *relayMsg) {
	m.relayedC.WithLabelValues(direction, msg.kind()).Inc()
}
func (m *metrics) otrState(state string, delta int) {
	m.otrG.WithLabelValues(state).Add(float64(delta))
}
func (m *metrics) drop(reason dropReason) { m.dropsC.WithLabelValues(reason.String()).Inc() }
func (m *metrics) dropN(reason dropReason, n int) {
	m.dropsC.WithLabelValues(reason.String()).Add(float64(n))
}
func (m *metrics) queue(skin string, n int)     { m.queueG.WithLabelValues(skin).Set(float64(n)) }
func (m *metrics) chat(state string, delta int) { m.chatsG.WithLabelValues(state).Add(float64(delta)) }
func (m *metrics) onDuty(skin string, n int)    { m.dutyG.WithLabelValues(skin).Set(float64(n)) }
