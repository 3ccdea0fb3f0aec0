using WalBridge.Connector.Cli;
using WalBridge.Connector.Verification;

namespace WalBridge.Connector.Tests;

/// <summary>The replay semantics the verification rebuilds tables with (both readers share them).</summary>
public class ReplayedTableTests
{
    private static Dictionary<string, string?> Row(params (string Column, string? Value)[] values) =>
        values.ToDictionary(v => v.Column, v => v.Value, StringComparer.Ordinal);

    private static ReplayedTable Keyless(params string[] columns)
    {
        var table = new ReplayedTable { Topic = "t" };
        table.SetSchema("public", "t", columns, columns); // REPLICA IDENTITY FULL without a key: every column is the identity
        return table;
    }

    [Fact]
    public void Identical_rows_of_a_table_without_a_key_are_counted_and_an_update_or_delete_takes_one()
    {
        var table = Keyless("a", "b");
        table.Insert(Row(("a", "1"), ("b", "x")));
        table.Insert(Row(("a", "1"), ("b", "x")));
        table.Insert(Row(("a", "1"), ("b", "x")));
        Assert.Equal(3, table.RowCount);

        table.Update(Row(("a", "1"), ("b", "x")), Row(("a", "1"), ("b", "y")), [], "test");
        table.Delete(Row(("a", "1"), ("b", "x")), "test");
        Assert.Equal(2, table.RowCount);
        Assert.Single(table.Rows.Values.SelectMany(r => r), r => r["b"] == "x");
        Assert.Single(table.Rows.Values.SelectMany(r => r), r => r["b"] == "y");
        Assert.Equal(0, table.UnmatchedCount);
    }

    [Fact]
    public void Snapshot_reads_upsert_by_key_and_a_later_snapshot_removes_the_rows_it_does_not_read()
    {
        var table = new ReplayedTable { Topic = "t" };
        table.SetSchema("public", "t", ["id", "v"], ["id"]);
        table.Read(Row(("id", "1"), ("v", "a")), 100);
        table.Read(Row(("id", "2"), ("v", "b")), 100);
        table.Read(Row(("id", "1"), ("v", "again")), 100);
        table.Insert(Row(("id", "3"), ("v", "c")));
        Assert.Equal(3, table.RowCount);
        Assert.Equal("again", table.Rows["1"].Single()["v"]);

        // A re-snapshot at 300 reads 1 and 3 only: 2 was deleted in the gap before it.
        table.Read(Row(("id", "3"), ("v", "c2")), 300);
        table.Read(Row(("id", "1"), ("v", "a2")), 300);
        Assert.Equal(["1", "3"], table.Rows.Keys.Order(StringComparer.Ordinal).ToArray());
        Assert.Equal("c2", table.Rows["3"].Single()["v"]);
    }

    [Fact]
    public void Snapshot_reads_of_a_table_without_a_key_are_rows_of_their_own()
    {
        var table = Keyless("a", "b");
        table.Read(Row(("a", "1"), ("b", "x")), 100);
        table.Read(Row(("a", "1"), ("b", "x")), 100);
        Assert.Equal(2, table.RowCount);
        // A re-snapshot replaces them, identical rows included.
        table.Read(Row(("a", "1"), ("b", "x")), 200);
        Assert.Equal(1, table.RowCount);
    }

    [Fact]
    public void A_change_of_a_row_the_table_does_not_hold_is_reported()
    {
        var table = Keyless("a");
        table.Delete(Row(("a", "7")), "commit LSN 0/1");
        Assert.Equal(1, table.UnmatchedCount);
        Assert.Contains("delete of a row that is not in the rebuilt table", table.Unmatched[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Added_and_dropped_columns_re_key_a_table_without_a_key()
    {
        var table = Keyless("a");
        table.Insert(Row(("a", "1")));
        table.Insert(Row(("a", "1")));
        // ADD COLUMN b: existing rows are NULL there, and the old row PostgreSQL sends says so.
        table.SetSchema("public", "t", ["a", "b"], ["a", "b"]);
        table.Update(Row(("a", "1"), ("b", null)), Row(("a", "1"), ("b", "new")), [], "test");
        Assert.Equal(0, table.UnmatchedCount);
        // DROP COLUMN b, then a new column b: its old values are gone.
        table.SetSchema("public", "t", ["a"], ["a"]);
        table.SetSchema("public", "t", ["a", "b"], ["a", "b"]);
        table.Delete(Row(("a", "1"), ("b", null)), "test");
        table.Delete(Row(("a", "1"), ("b", null)), "test");
        Assert.Equal(0, table.UnmatchedCount);
        Assert.Equal(0, table.RowCount);
    }

    [Fact]
    public void Unchanged_TOAST_values_are_kept_also_across_a_key_change()
    {
        var table = new ReplayedTable { Topic = "t" };
        table.SetSchema("public", "t", ["id", "big"], ["id"]);
        table.Insert(Row(("id", "1"), ("big", "large value")));
        table.Update(Row(("id", "1"), ("big", null)), Row(("id", "2"), ("big", null)), ["big"], "test");
        var row = Assert.Single(table.Rows.Values.SelectMany(r => r));
        Assert.Equal("2", row["id"]);
        Assert.Equal("large value", row["big"]);
    }
}
