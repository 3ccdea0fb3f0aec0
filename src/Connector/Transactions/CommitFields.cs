using WalBridge.Offsets;

namespace WalBridge.Connector.Transactions;

/// <summary>A commit as both protocols describe it.</summary>
/// <param name="CommitLsn">The commit record's LSN: the position written to the offsets topic and acknowledged.</param>
/// <param name="EndLsn">Just past the commit record.</param>
/// <param name="Timestamp">Commit time at the source.</param>
internal readonly record struct CommitFields(Lsn CommitLsn, Lsn EndLsn, DateTimeOffset Timestamp);
