package component

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the component's Prometheus series. Labels carry skin names,
// directions, states and reasons: never a body or a JID.
type metrics struct {
	relayedC *prometheus.CounterVec // direction: to-operator, to-visitor
	dropsC   *prometheus.CounterVec // reason
	queueG   *prometheus.GaugeVec   // skin
	chatsG   *prometheus.GaugeVec   // state
	dutyG    *prometheus.GaugeVec   // skin
	conns    prometheus.Counter     // successful handshakes
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		relayedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "otrdesk", Name: "relayed_stanzas_total",
			Help: "Messages relayed between visitors and operators.",
		}, []string{"direction"}),
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
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.relayedC, m.dropsC, m.queueG, m.chatsG, m.dutyG, m.conns} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("component: registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) relay(direction string)       { m.relayedC.WithLabelValues(direction).Inc() }
func (m *metrics) drop(reason string)           { m.dropsC.WithLabelValues(reason).Inc() }
func (m *metrics) dropN(reason string, n int)   { m.dropsC.WithLabelValues(reason).Add(float64(n)) }
func (m *metrics) queue(skin string, n int)     { m.queueG.WithLabelValues(skin).Set(float64(n)) }
func (m *metrics) chat(state string, delta int) { m.chatsG.WithLabelValues(state).Add(float64(delta)) }
func (m *metrics) onDuty(skin string, n int)    { m.dutyG.WithLabelValues(skin).Set(float64(n)) }
