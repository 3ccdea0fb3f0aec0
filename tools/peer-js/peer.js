#!/usr/bin/env node
// The benchmark peer (docs/benchmarks.md): the usual JavaScript CDC pipeline. npm
// pg-logical-replication reads a pgoutput slot (protocol 1, a publication) and kafkajs produces one
// JSON message per row change ({op, table, lsn, before, after}) into `<prefix>.<schema>.<table>`.
// Changes are batched (at most --batch messages per send, at most --in-flight sends at once); the
// slot is acknowledged once the sends holding a transaction's rows are acknowledged by Kafka
// (at-least-once). The replication stream is paused while too many messages wait.
//
//   node peer.js --host H --port P --user U --database D --slot S --publication PUB
//                --brokers B --topic-prefix T [--end-lsn X/Y] [--batch 5000] [--in-flight 4]
//
// Prints `ready` once streaming has started. With --end-lsn it stops after the first transaction
// whose commit ends past that position has been acknowledged by Kafka and prints one JSON line
// {"rows":…, "bytes":…, "messages":…, "transactions":…, "seconds":…}; without, it runs until SIGTERM
// (then prints the same line). Exit code 0, or 1 on an error.
'use strict';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { LogicalReplicationService, PgoutputPlugin } = require('pg-logical-replication');
const { Kafka, logLevel } = require('kafkajs');

function parseArgs(argv) {
    const out = {};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (!a.startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${a}`);
        out[a.slice(2)] = argv[++i];
    }
    for (const k of ['host', 'port', 'user', 'database', 'slot', 'publication', 'brokers', 'topic-prefix'])
        if (!out[k]) throw new Error(`--${k} is required`);
    return out;
}

function lsnToBigInt(lsn) {
    const [hi, lo] = lsn.split('/');
    return (BigInt(parseInt(hi, 16)) << 32n) | BigInt(parseInt(lo, 16));
}

async function main() {
    const args = parseArgs(process.argv.slice(2));
    const endLsn = args['end-lsn'] ? lsnToBigInt(args['end-lsn']) : null;
    const maxBatch = Number(args.batch || 5000);
    const maxInFlight = Number(args['in-flight'] || 4);
    const prefix = args['topic-prefix'];
    const started = process.hrtime.bigint();

    const kafka = new Kafka({
        clientId: 'walbridge-bench-peer',
        brokers: args.brokers.split(','),
        logLevel: logLevel.ERROR,
        retry: { retries: 10 },
    });
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();

    const service = new LogicalReplicationService(
        { host: args.host, port: Number(args.port), user: args.user, database: args.database },
        { acknowledge: { auto: false, timeoutSeconds: 10 } });
    const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [args.publication] });

    let rows = 0, bytes = 0, messages = 0, transactions = 0;
    let buffer = new Map();      // topic -> [{value}]
    let buffered = 0;
    let bufferedCommitLsn = null; // last commit whose rows are all in `buffer` or earlier
    let inFlight = 0;
    let paused = false;
    let finishing = false;
    let failed = null;
    let doneResolve;
    const done = new Promise(resolve => { doneResolve = resolve; });
    let endReachedLsn = null;     // commit LSN (text) at which --end-lsn was reached
    let ackedEnd = false;

    const stream = () => service._connection && service._connection.stream;
    const pause = () => { if (!paused && stream()) { stream().pause(); paused = true; } };
    const resume = () => { if (paused && stream()) { stream().resume(); paused = false; } };

    function flush() {
        while (inFlight < maxInFlight && buffered > 0) {
            const batch = buffer;
            const count = buffered;
            const ackLsn = bufferedCommitLsn;
            buffer = new Map();
            buffered = 0;
            bufferedCommitLsn = null;
            inFlight++;
            const topicMessages = [...batch].map(([topic, msgs]) => ({ topic, messages: msgs }));
            const send = topicMessages.length === 1 ? producer.send(topicMessages[0]) : producer.sendBatch({ topicMessages });
            send.then(async () => {
                inFlight--;
                messages += count;
                if (ackLsn) {
                    await service.acknowledge(ackLsn);
                    if (endReachedLsn && lsnToBigInt(ackLsn) >= lsnToBigInt(endReachedLsn)) ackedEnd = true;
                }
                if (buffered < maxBatch * maxInFlight) resume();
                flush();
                if (ackedEnd && inFlight === 0 && buffered === 0) doneResolve();
            }, e => { failed = e; doneResolve(); });
        }
    }

    function add(topic, value) {
        let list = buffer.get(topic);
        if (!list) buffer.set(topic, list = []);
        list.push({ value });
        buffered++;
        bytes += Buffer.byteLength(value);
        rows++;
        if (buffered >= maxBatch) flush();
        if (buffered >= maxBatch * maxInFlight) pause();
    }

    let currentLsn = null;
    service.on('data', (lsn, log) => {
        if (finishing) return;
        switch (log.tag) {
            case 'insert':
            case 'update':
            case 'delete': {
                const r = log.relation;
                const value = JSON.stringify({
                    op: log.tag === 'insert' ? 'c' : log.tag === 'update' ? 'u' : 'd',
                    table: `${r.schema}.${r.name}`,
                    lsn,
                    before: log.old || log.key || null,
                    after: log.new || null,
                });
                add(`${prefix}.${r.schema}.${r.name}`, value);
                break;
            }
            case 'commit': {
                transactions++;
                currentLsn = log.commitEndLsn || lsn;
                bufferedCommitLsn = currentLsn;
                if (endLsn !== null && lsnToBigInt(log.commitEndLsn || lsn) > endLsn && !endReachedLsn) {
                    endReachedLsn = currentLsn;
                    finishing = true;
                }
                // Send what a transaction produced without waiting for more when the pipe is idle.
                if (inFlight === 0) flush();
                if (finishing && buffered === 0 && inFlight === 0) { ackedEnd = true; doneResolve(); }
                break;
            }
            default:
                break;
        }
    });
    service.on('error', e => { failed = e; doneResolve(); });
    service.on('start', () => console.log('ready'));
    const stop = () => { finishing = true; if (buffered > 0) flush(); if (inFlight === 0 && buffered === 0) doneResolve(); else ackedEnd = true; };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);

    service.subscribe(plugin, args.slot).catch(e => { if (!finishing) { failed = e; doneResolve(); } });
    await done;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    try { await service.stop(); } catch { /* closing */ }
    try { await producer.disconnect(); } catch { /* closing */ }
    if (failed) {
        console.error(`peer: ${failed && failed.stack || failed}`);
        process.exit(1);
    }
    console.log(JSON.stringify({ rows, bytes, messages, transactions, seconds }));
    process.exit(0);
}

main().catch(e => { console.error(`peer: ${e && e.stack || e}`); process.exit(1); });
