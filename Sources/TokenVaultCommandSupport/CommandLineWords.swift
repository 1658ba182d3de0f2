import TokenVault

/// A key command's command line, split into a program and its arguments the way a shell splits words, but with no
/// shell: no variables, globs, pipes or redirections. Single quotes keep everything literally; outside them a
/// backslash keeps the next character literally.
package enum CommandLineWords {
    /// Characters a shell would treat specially; unquoted, they are refused, so that `cmd | base64` fails at once
    /// instead of passing `|` to `cmd` as an argument.
    static let shellOnly: Set<Character> = ["|", "&", ";", "<", ">", "(", ")", "$", "`", "*", "?", "~"]

    /// The words of `line`. `variable` names the setting in errors; the line itself is never quoted, since it may
    /// name files an operator would rather not print.
    ///
    /// - Throws: `.keyConfiguration` for an empty line, an unterminated quote, a trailing backslash or an unquoted
    ///   shell character.
    package static func split(_ line: String, variable: String) throws(VaultError) -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var quote: Character? = nil
        var escaped = false
        for character in line {
            if escaped {
                word.append(character)
                escaped = false
                continue
            }
            switch (quote, character) {
            case ("'", "'"), ("\"", "\""):
                quote = nil
            case ("'", _):
                word.append(character)
            case ("\"", "\\"):
                escaped = true
            case ("\"", _):
                word.append(character)
            case (nil, "'"), (nil, "\""):
                quote = character
                inWord = true
            case (nil, "\\"):
                escaped = true
                inWord = true
            case (nil, _) where character.isWhitespace:
                if inWord { words.append(word) }
                word = ""
                inWord = false
            case (nil, _) where shellOnly.contains(character):
                throw VaultError(
                    .keyConfiguration,
                    "\(variable) holds an unquoted '\(character)': key commands run without a shell (no pipes, "
                        + "redirections, variables or globs). Put a pipeline in a script and name the script, or "
                        + "quote the character.")
            default:
                word.append(character)
                inWord = true
            }
        }
        if quote != nil || escaped {
            throw VaultError(
                .keyConfiguration, "\(variable) ends inside a quote or after a backslash; close the quote.")
        }
        if inWord { words.append(word) }
        guard !words.isEmpty else {
            throw VaultError(.keyConfiguration, "\(variable) is set but names no program.")
        }
        return words
    }
}
