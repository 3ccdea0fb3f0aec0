using System.Runtime.InteropServices;
using System.Runtime.InteropServices.Marshalling;
using Confluent.Kafka;

namespace WalBridge.Broker;

/// <summary>
/// An in-process Kafka cluster: librdkafka's mock brokers (<c>rdkafka_mock.h</c>), which speak
/// the real Kafka protocol on loopback TCP ports, so any Kafka client can use
/// <see cref="BootstrapServers"/>.
/// </summary>
/// <remarks>
/// <para>
/// Needs the patched librdkafka from <c>scripts/build-librdkafka.sh</c>: read_committed fetches,
/// CreateTopics and <c>rd_kafka_mock_set_auto_create_defaults</c> come from its patches
/// (scripts/patches). Call <see cref="Librdkafka.EnsureLoaded"/> first (the constructor does).
/// </para>
/// <para>
/// Topics are made by <see cref="CreateTopic"/>, by admin clients' CreateTopics (v0..v4: the
/// requested partition count; the replication factor capped at the broker count, -1 for either
/// is the default below; configs such as <c>cleanup.policy=compact</c> accepted and ignored;
/// per-topic errors TopicAlreadyExists, InvalidPartitions, InvalidReplicationFactor,
/// InvalidReplicaAssignment for explicit assignments, TopicException for invalid names;
/// <c>validate_only</c> honoured; <see cref="PushRequestErrors"/> with
/// <see cref="KafkaApiKey.CreateTopics"/> fails every topic of the next request), or else
/// auto-created on first use with one partition and replication factor min(3, brokers).
/// Idempotent and transactional producers and consumer groups work; broker ids are
/// 1..<c>brokers</c>, and broker 1 is the controller (admin requests wait while it is down).
/// </para>
/// <para>
/// Threading: every member may be called from any thread; librdkafka serialises access to the
/// cluster state. Lifetime: <see cref="Dispose"/> stops the brokers (clients see
/// disconnects); members then throw <see cref="ObjectDisposedException"/>.
/// </para>
/// </remarks>
public sealed partial class MockCluster : IDisposable
{
    private readonly MockClusterHandle handle;

    /// <summary>Starts a cluster of <paramref name="brokers"/> brokers.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="brokers"/> is not 1..32.</exception>
    /// <exception cref="InvalidOperationException">librdkafka is missing or refused to start.</exception>
    public MockCluster(int brokers = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(brokers, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(brokers, 32);
        Librdkafka.EnsureLoaded();

        BrokerCount = brokers;
        handle = MockClusterHandle.Create(brokers);
        BootstrapServers = Native.rd_kafka_mock_cluster_bootstraps(handle)
            ?? throw new InvalidOperationException("rd_kafka_mock_cluster_bootstraps returned NULL.");

        // One partition keeps a test's records in one ordered log; the replication factor
        // still spreads replicas so broker-down scenarios are meaningful.
        Native.rd_kafka_mock_set_auto_create_defaults(handle, 1, Math.Min(3, brokers));
        // Consumer groups would otherwise wait 3 s before their first assignment.
        Native.rd_kafka_mock_group_initial_rebalance_delay_ms(handle, 0);
    }

    /// <summary>The comma-separated <c>host:port</c> list of the brokers.</summary>
    public string BootstrapServers { get; }

    /// <summary>Number of brokers (ids 1..BrokerCount).</summary>
    public int BrokerCount { get; }

    /// <summary>
    /// Creates a topic (it must not exist yet) directly, as admin clients' CreateTopics does
    /// over the protocol.
    /// </summary>
    /// <exception cref="KafkaMockException">librdkafka refused (e.g. topic exists).</exception>
    public void CreateTopic(string name, int partitions, int replicationFactor = -1)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        var rf = replicationFactor < 1 ? Math.Min(3, BrokerCount) : replicationFactor;
        Check(Native.rd_kafka_mock_topic_create(handle, name, partitions, rf), $"topic-create {name}");
    }

    /// <summary>
    /// Disconnects broker <paramref name="brokerId"/> (-1: all) and refuses new connections.
    /// Partition leadership does not move: partitions it leads are unavailable until
    /// <see cref="BrokerUp"/>.
    /// </summary>
    public void BrokerDown(int brokerId) =>
        Check(Native.rd_kafka_mock_broker_set_down(handle, brokerId), $"broker-down {brokerId}");

    /// <summary>Makes broker <paramref name="brokerId"/> (-1: all) accept connections again.</summary>
    public void BrokerUp(int brokerId) =>
        Check(Native.rd_kafka_mock_broker_set_up(handle, brokerId), $"broker-up {brokerId}");

    /// <summary>
    /// Makes the next <paramref name="errors"/>.Length requests of type <paramref name="apiKey"/>
    /// to any broker fail, in order, with these error codes (<see cref="ErrorCode.Local_Transport"/>
    /// makes the broker disconnect instead).
    /// </summary>
    public unsafe void PushRequestErrors(KafkaApiKey apiKey, params ReadOnlySpan<ErrorCode> errors)
    {
        if (errors.IsEmpty)
        {
            return;
        }

        // rd_kafka_resp_err_t is a C enum (int); ErrorCode has the same values and width.
        var codes = new int[errors.Length];
        for (var i = 0; i < errors.Length; i++)
        {
            codes[i] = (int)errors[i];
        }

        fixed (int* p = codes)
        {
            Native.rd_kafka_mock_push_request_errors_array(handle, (short)apiKey, (nuint)codes.Length, p);
        }
    }

    /// <summary>
    /// Makes the next requests of type <paramref name="apiKey"/> to broker
    /// <paramref name="brokerId"/> answer with the given error (may be
    /// <see cref="ErrorCode.NoError"/>) after the given delay. Broker errors take precedence over
    /// cluster errors.
    /// </summary>
    public void BrokerPushRequestErrors(
        int brokerId, KafkaApiKey apiKey, params ReadOnlySpan<(ErrorCode Error, int RttMs)> errors)
    {
        foreach (var (error, rttMs) in errors)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(rttMs);
            // The C function is variadic; one (error, rtt) pair per call appends to the same
            // FIFO stack, so the sequence is preserved.
            Check(
                Native.rd_kafka_mock_broker_push_request_error_rtts(
                    handle, brokerId, (short)apiKey, 1, (int)error, rttMs),
                $"broker-push-errors {brokerId}");
        }
    }

    /// <summary>Drops the pending cluster-wide errors for <paramref name="apiKey"/>.</summary>
    public void ClearRequestErrors(KafkaApiKey apiKey) =>
        Native.rd_kafka_mock_clear_request_errors(handle, (short)apiKey);

    /// <summary>Stops the brokers and frees the cluster. Idempotent.</summary>
    public void Dispose() => handle.Dispose();

    private static void Check(int err, string what)
    {
        if (err != 0)
        {
            throw new KafkaMockException((ErrorCode)err, $"{what}: {Native.rd_kafka_err2str(err)} ({(ErrorCode)err})");
        }
    }

    /// <summary>
    /// Owns the hosting <c>rd_kafka_t</c> and the <c>rd_kafka_mock_cluster_t</c> it carries;
    /// releases them in that dependency order (cluster first).
    /// </summary>
    private sealed class MockClusterHandle : SafeHandle
    {
        private IntPtr kafka;

        private MockClusterHandle()
            : base(IntPtr.Zero, ownsHandle: true)
        {
        }

        public override bool IsInvalid => handle == IntPtr.Zero;

        public static unsafe MockClusterHandle Create(int brokers)
        {
            const int errstrSize = 512;
            var errstr = stackalloc byte[errstrSize];
            var conf = Native.rd_kafka_conf_new();
            // The hosting client never produces; it only owns the mock cluster's threads.
            // Its logs (the mock broker's too) go to stderr, which LocalBroker captures.
            if (Native.rd_kafka_conf_set(conf, "log_level", "4", errstr, errstrSize) != 0)
            {
                Native.rd_kafka_conf_destroy(conf);
                throw new InvalidOperationException(
                    "rd_kafka_conf_set failed: " + Marshal.PtrToStringUTF8((IntPtr)errstr));
            }

            // On success rd_kafka_new takes ownership of conf; on failure it stays ours.
            var rk = Native.rd_kafka_new(0 /* RD_KAFKA_PRODUCER */, conf, errstr, errstrSize);
            if (rk == IntPtr.Zero)
            {
                Native.rd_kafka_conf_destroy(conf);
                throw new InvalidOperationException(
                    "rd_kafka_new failed: " + Marshal.PtrToStringUTF8((IntPtr)errstr));
            }

            var mc = Native.rd_kafka_mock_cluster_new(rk, brokers);
            if (mc == IntPtr.Zero)
            {
                Native.rd_kafka_destroy(rk);
                throw new InvalidOperationException(
                    $"rd_kafka_mock_cluster_new({brokers}) failed (no free loopback ports?).");
            }

            var result = new MockClusterHandle { kafka = rk };
            result.SetHandle(mc);
            return result;
        }

        protected override bool ReleaseHandle()
        {
            Native.rd_kafka_mock_cluster_destroy(handle);
            if (kafka != IntPtr.Zero)
            {
                Native.rd_kafka_destroy(kafka);
                kafka = IntPtr.Zero;
            }

            return true;
        }
    }

    /// <summary>
    /// Imports of the C and mock API. "librdkafka" is mapped to the built library by the
    /// resolver that <see cref="Librdkafka.EnsureLoaded"/> installs on this assembly.
    /// </summary>
    private static unsafe partial class Native
    {
        private const string Lib = "librdkafka";

        [LibraryImport(Lib)]
        public static partial IntPtr rd_kafka_conf_new();

        [LibraryImport(Lib)]
        public static partial void rd_kafka_conf_destroy(IntPtr conf);

        [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
        public static partial int rd_kafka_conf_set(IntPtr conf, string name, string value, byte* errstr, nuint errstrSize);

        [LibraryImport(Lib)]
        public static partial IntPtr rd_kafka_new(int type, IntPtr conf, byte* errstr, nuint errstrSize);

        [LibraryImport(Lib)]
        public static partial void rd_kafka_destroy(IntPtr rk);

        [LibraryImport(Lib)]
        [return: MarshalUsing(typeof(ConstUtf8StringMarshaller))]
        public static partial string? rd_kafka_err2str(int err);

        [LibraryImport(Lib)]
        public static partial IntPtr rd_kafka_mock_cluster_new(IntPtr rk, int brokerCnt);

        [LibraryImport(Lib)]
        public static partial void rd_kafka_mock_cluster_destroy(IntPtr mcluster);

        [LibraryImport(Lib)]
        [return: MarshalUsing(typeof(ConstUtf8StringMarshaller))]
        public static partial string? rd_kafka_mock_cluster_bootstraps(MockClusterHandle mcluster);

        [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
        public static partial int rd_kafka_mock_topic_create(MockClusterHandle mcluster, string topic, int partitionCnt, int replicationFactor);

        [LibraryImport(Lib)]
        public static partial int rd_kafka_mock_broker_set_down(MockClusterHandle mcluster, int brokerId);

        [LibraryImport(Lib)]
        public static partial int rd_kafka_mock_broker_set_up(MockClusterHandle mcluster, int brokerId);

        [LibraryImport(Lib)]
        public static partial void rd_kafka_mock_push_request_errors_array(MockClusterHandle mcluster, short apiKey, nuint cnt, int* errors);

        // Variadic in C: (mcluster, broker_id, ApiKey, cnt, ...(err, rtt_ms) pairs). On the
        // Linux x64/arm64 ABIs integer variadic arguments are passed exactly like fixed ones,
        // so a fixed signature for cnt == 1 is a correct call.
        [LibraryImport(Lib)]
        public static partial int rd_kafka_mock_broker_push_request_error_rtts(MockClusterHandle mcluster, int brokerId, short apiKey, nuint cnt, int err, int rttMs);

        [LibraryImport(Lib)]
        public static partial void rd_kafka_mock_clear_request_errors(MockClusterHandle mcluster, short apiKey);

        [LibraryImport(Lib)]
        public static partial void rd_kafka_mock_group_initial_rebalance_delay_ms(MockClusterHandle mcluster, int delayMs);

        // Added by scripts/patches/librdkafka-2.15.1-mock-read-committed.patch.
        [LibraryImport(Lib)]
        public static partial void rd_kafka_mock_set_auto_create_defaults(MockClusterHandle mcluster, int partitionCnt, int replicationFactor);
    }

    /// <summary>Marshals a C <c>const char*</c> the callee owns: copied, never freed.</summary>
    [CustomMarshaller(typeof(string), MarshalMode.ManagedToUnmanagedOut, typeof(ConstUtf8StringMarshaller))]
    private static class ConstUtf8StringMarshaller
    {
        public static string? ConvertToManaged(IntPtr unmanaged) => Marshal.PtrToStringUTF8(unmanaged);
    }
}

/// <summary>Kafka protocol request types (API keys) for error injection.</summary>
public enum KafkaApiKey : short
{
    Produce = 0,
    Fetch = 1,
    ListOffsets = 2,
    Metadata = 3,
    OffsetCommit = 8,
    OffsetFetch = 9,
    FindCoordinator = 10,
    JoinGroup = 11,
    Heartbeat = 12,
    LeaveGroup = 13,
    SyncGroup = 14,
    ApiVersions = 18,
    CreateTopics = 19,
    InitProducerId = 22,
    AddPartitionsToTxn = 24,
    AddOffsetsToTxn = 25,
    EndTxn = 26,
    TxnOffsetCommit = 28,
}

/// <summary>A mock-cluster operation was refused by librdkafka.</summary>
public sealed class KafkaMockException : Exception
{
    public KafkaMockException()
    {
    }

    public KafkaMockException(string message)
        : base(message)
    {
    }

    public KafkaMockException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public KafkaMockException(ErrorCode error, string message)
        : base(message) => Error = error;

    /// <summary>The librdkafka error code.</summary>
    public ErrorCode Error { get; }
}
