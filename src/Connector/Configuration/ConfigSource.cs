using System.Text.Json;

namespace WalBridge.Connector.Configuration;

/// <summary>
/// Reads flat dotted configuration keys, Kafka Connect style, from the places a user can put
/// them. Later sources override earlier ones: file, then environment, then <c>--set</c>.
/// </summary>
public static class ConfigSource
{
    /// <summary>Environment variables with this prefix become keys: <c>WALBRIDGE_DATABASE_PASSWORD</c> → <c>database.password</c>.</summary>
    public const string EnvironmentPrefix = "WALBRIDGE_";

    /// <summary>
    /// Loads a <c>.properties</c> file (<c>key=value</c>, <c>#</c>/<c>!</c> comments) or a JSON file in
    /// Kafka Connect's shape (<c>{"name": …, "config": {…}}</c>) or a flat JSON object.
    /// </summary>
    /// <exception cref="ConfigurationException">The file is missing or malformed.</exception>
    public static Dictionary<string, string> LoadFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new ConfigurationException($"Configuration file '{path}' does not exist.");
        }

        var text = File.ReadAllText(path);
        return text.TrimStart().StartsWith('{') ? ParseJson(text, path) : ParseProperties(text, path);
    }

    public static Dictionary<string, string> ParseProperties(string text, string origin)
    {
        ArgumentNullException.ThrowIfNull(text);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or '!')
            {
                continue;
            }

            var eq = line.IndexOfAny(['=', ':']);
            if (eq <= 0)
            {
                throw new ConfigurationException($"{origin}:{lineNumber}: expected 'key=value', found '{line}'.");
            }

            result[line[..eq].Trim()] = line[(eq + 1)..].Trim();
        }
        return result;
    }

    public static Dictionary<string, string> ParseJson(string text, string origin)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new ConfigurationException($"{origin}: not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new ConfigurationException($"{origin}: expected a JSON object.");
            }

            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            if (root.TryGetProperty("config", out var config) && config.ValueKind == JsonValueKind.Object)
            {
                // Kafka Connect's REST shape: {"name": "...", "config": {...}}.
                if (root.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String)
                {
                    result["name"] = name.GetString()!;
                }

                Flatten(config, result, origin);
            }
            else
            {
                Flatten(root, result, origin);
            }
            return result;
        }
    }

    private static void Flatten(JsonElement obj, Dictionary<string, string> into, string origin)
    {
        foreach (var property in obj.EnumerateObject())
        {
            into[property.Name] = property.Value.ValueKind switch
            {
                JsonValueKind.String => property.Value.GetString()!,
                JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => property.Value.GetRawText(),
                _ => throw new ConfigurationException(
                    $"{origin}: key '{property.Name}' must be a string, number or boolean (configuration keys are flat, dotted names)."),
            };
        }
    }

    /// <summary>Keys from environment variables that start with <see cref="EnvironmentPrefix"/>.</summary>
    public static Dictionary<string, string> FromEnvironment(System.Collections.IDictionary environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry entry in environment)
        {
            if (entry.Key is not string name || !name.StartsWith(EnvironmentPrefix, StringComparison.Ordinal) || entry.Value is not string value)
            {
                continue;
            }

            var key = name[EnvironmentPrefix.Length..].ToLowerInvariant().Replace("__", "-", StringComparison.Ordinal).Replace('_', '.');
            // Internal switches of the product (e.g. WALBRIDGE_LIBRDKAFKA) are not configuration keys.
            if (ConnectorConfig.IsKnownKey(key))
            {
                result[key] = value;
            }
        }
        return result;
    }

    /// <summary>Parses one <c>--set key=value</c> argument.</summary>
    public static KeyValuePair<string, string> ParseOverride(string assignment)
    {
        ArgumentNullException.ThrowIfNull(assignment);
        var eq = assignment.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0)
        {
            throw new ConfigurationException($"--set expects key=value, found '{assignment}'.");
        }

        return new(assignment[..eq].Trim(), assignment[(eq + 1)..].Trim());
    }
}
