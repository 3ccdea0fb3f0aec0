using System.Text;

namespace WalBridge.Connector.Formats.Debezium;

/// <summary>Parses PostgreSQL's one-dimensional array output (<c>{a,"b c",NULL}</c>) into its elements. Thread-safe.</summary>
internal static class PgArrayText
{
    /// <summary>The elements (null for SQL NULL), or null when the text is not a one-dimensional array with lower bound 1.</summary>
    public static List<string?>? TryParse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length < 2 || text[0] != '{' || text[^1] != '}')
        {
            return null; // "[0:2]={...}" bounds decoration, or not an array
        }

        var elements = new List<string?>();
        if (text.Length == 2)
        {
            return elements;
        }

        var i = 1;
        var current = new StringBuilder();
        while (i < text.Length - 1)
        {
            current.Clear();
            if (text[i] == '{')
            {
                return null; // multi-dimensional
            }

            if (text[i] == '"')
            {
                i++;
                while (i < text.Length - 1 && text[i] != '"')
                {
                    if (text[i] == '\\')
                    {
                        i++;
                    }

                    current.Append(text[i]);
                    i++;
                }
                i++; // closing quote
                elements.Add(current.ToString());
            }
            else
            {
                while (i < text.Length - 1 && text[i] != ',')
                {
                    current.Append(text[i]);
                    i++;
                }
                var element = current.ToString().Trim();
                elements.Add(element.Equals("NULL", StringComparison.OrdinalIgnoreCase) ? null : element);
            }
            if (i < text.Length - 1)
            {
                if (text[i] != ',')
                {
                    return null;
                }

                i++;
            }
        }
        return elements;
    }
}
