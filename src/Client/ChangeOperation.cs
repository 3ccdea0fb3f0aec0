namespace WalBridge.Client;

/// <summary>What a row change did: the <c>_op</c> column of docs/format.md.</summary>
public enum ChangeOperation
{
    /// <summary><c>c</c>: the table columns hold the new row.</summary>
    Insert,
    /// <summary><c>u</c>: the table columns hold the new row; <c>_before</c> the old row or old key when PostgreSQL sent one.</summary>
    Update,
    /// <summary><c>d</c>: the table columns hold the deleted row (or only its key) as PostgreSQL sent it.</summary>
    Delete,
    /// <summary><c>t</c>: every row of the table written before it is gone; the table columns are null.</summary>
    Truncate,
    /// <summary><c>r</c>: a snapshot read (reserved by the format; the connector does not write it today).</summary>
    Read,
}
