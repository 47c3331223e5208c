#!/usr/bin/env python3
# Generates src/config/kafka_broker.rs from a DescribeConfigs v4 dump of a fresh Kafka 4.4 broker:
#   compat-tests/protocol/build OUT; OUT/protocol-diff KAFKA KAFKA --api DescribeConfigs --dump > dump.txt
#   grep "JSON broker=kafka api=DescribeConfigs v=4 case=broker_all" dump.txt | head -1 | sed "s/^JSON[^{]*//" > broker_all.json
#   scripts/gen-kafka-broker-settings.py broker_all.json src/config/kafka_broker.rs && cargo fmt
import json, sys
d = json.load(open(sys.argv[1]))
cs = sorted(d['results'][0]['configs'], key=lambda c: c['name'])
# Defaults of the settings the reference broker's server.properties set (source STATIC_BROKER_CONFIG
# or the storage format's cluster default): Kafka 4.4's own defaults.
STATIC_DEFAULTS = {
    'share.coordinator.state.topic.replication.factor': '3',
    'share.coordinator.state.topic.min.isr': '2',
    'listener.security.protocol.map': 'SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT',
    'node.id': None, 'controller.listener.names': None, 'log.dirs': None,
    'controller.quorum.voters': '', 'group.initial.rebalance.delay.ms': '3000',
    'transaction.state.log.replication.factor': '3', 'offsets.topic.replication.factor': '3',
    'transaction.state.log.min.isr': '2', 'listeners': 'PLAINTEXT://:9092',
    'inter.broker.listener.name': None, 'process.roles': '', 'broker.id': '-1',
    'advertised.listeners': None, 'min.insync.replicas': '1',
}
TYPES = {1: 'Boolean', 2: 'String', 3: 'Int', 4: 'Short', 5: 'Long', 6: 'Double', 7: 'List', 8: 'Class', 9: 'Password'}
def lit(s):
    return json.dumps(s, ensure_ascii=False)
out = []
out.append('//! Every broker setting a Kafka 4.4 broker describes (DescribeConfigs v4 of a fresh single-node')
out.append('//! KRaft broker, compat-tests/kafka/refkafka.py), with Kafka\'s type, default, dynamic update mode,')
out.append('//! sensitivity and documentation. Generated data, not code: DescribeConfigs lists these for the')
out.append('//! names the registry (registry::BROKER) does not declare, and AlterConfigs accepts the dynamic')
out.append('//! ones (stored, described, no effect in sluice). A name the registry declares is answered from the')
out.append('//! registry. Regenerate from a broker_all dump of compat-tests/protocol (--dump).')
out.append('')
out.append('use super::registry::Type;')
out.append('')
out.append('pub struct KafkaSetting {')
out.append('    pub name: &\'static str,')
out.append('    pub ty: Type,')
out.append('    /// None: Kafka has no default (the value is null).')
out.append('    pub default: Option<&\'static str>,')
out.append('    /// Kafka can update it without a restart (AlterConfigs on a broker).')
out.append('    pub dynamic: bool,')
out.append('    pub sensitive: bool,')
out.append('    pub doc: &\'static str,')
out.append('}')
out.append('')
out.append('const fn k(name: &\'static str, ty: Type, default: Option<&\'static str>, dynamic: bool, sensitive: bool, doc: &\'static str) -> KafkaSetting {')
out.append('    KafkaSetting { name, ty, default, dynamic, sensitive, doc }')
out.append('}')
out.append('')
out.append('use Type::*;')
out.append('')
out.append('#[rustfmt::skip]')
out.append('pub static KAFKA_BROKER: &[KafkaSetting] = &[')
for c in cs:
    n = c['name']
    if c['configSource'] != 5:
        default = STATIC_DEFAULTS[n]
    else:
        default = c['value']
    dv = 'None' if default is None else f'Some({lit(default)})'
    out.append(f'    k({lit(n)}, {TYPES[c["configType"]]}, {dv}, {str(not c["readOnly"]).lower()}, {str(c["isSensitive"]).lower()}, {lit(c.get("documentation") or "")}),')
out.append('];')
open(sys.argv[2], 'w').write('\n'.join(out) + '\n')
