# bash completion for ferry(1): commands, flags, local paths, and the
# server's paths (from `ferry list FOLDER` on the server the command
# line names, through --server/-s or FERRY_SERVER or the config file;
# a folder completes with its '/', and the next Tab goes into it).
# Installed by meson into share/bash-completion/completions.

_ferry_remote_names()
{
    # Only the flags that choose and reach the server are passed on.
    local -a args=()
    local i
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        case ${COMP_WORDS[i]} in
        -s | --server | --token-file | --tls-ca | --tls-pin | --hello-timeout)
            args+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}")
            ((i++))
            ;;
        --tls)
            args+=(--tls)
            ;;
        esac
    done
    # $1: the folder part of the word ("" or "logs/"). The listing's lines
    # are "SIZE  YYYY-MM-DD HH:MM  NAME", a folder's NAME ending in '/'.
    local name
    ferry "${args[@]}" --hello-timeout 2 list ${1:+"$1"} 2>/dev/null |
        sed -E 's/^ *[0-9]+  [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}  //' |
        while IFS= read -r name; do
            printf '%s\n' "$1$name"
        done
}

# COMPREPLY: the server's paths that start with $cur.
_ferry_remote_paths()
{
    local folder="" name
    [[ $cur == */* ]] && folder=${cur%/*}/
    local -a names=()
    while IFS= read -r name; do
        [[ $name == "$cur"* ]] && names+=("$(printf '%q' "$name")")
    done < <(_ferry_remote_names "$folder")
    COMPREPLY=("${names[@]}")
    if ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == */ ]]; then
        compopt -o nospace 2>/dev/null
    fi
}

_ferry()
{
    local cur prev words cword
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    COMPREPLY=()

    local global_flags="-s --server --json --hash --timeout --hello-timeout --retry -q --quiet -v --verbose
        --no-progress --token --token-file --tls --tls-ca --tls-pin --help --version"
    local commands="list ls stat get put rm mv rename mkdir digest stats help"

    case $prev in
    --token-file | --tls-ca)
        COMPREPLY=($(compgen -f -- "$cur"))
        return
        ;;
    --hash)
        COMPREPLY=($(compgen -W "sha256 xxh3-128" -- "$cur"))
        return
        ;;
    -C | --directory)
        local w
        for w in "${COMP_WORDS[@]}"; do
            if [[ $w == put ]]; then # put -C: a folder on the server
                _ferry_remote_paths
                return
            fi
        done
        COMPREPLY=($(compgen -d -- "$cur"))
        return
        ;;
    --as)
        _ferry_remote_paths
        return
        ;;
    -o | --output)
        COMPREPLY=($(compgen -f -- "$cur"))
        return
        ;;
    -s | --server)
        local config=${FERRY_CONFIG:-${XDG_CONFIG_HOME:-$HOME/.config}/ferry/config.toml}
        local servers=""
        [[ -r $config ]] && servers=$(sed -n 's/^[[:space:]]*\[servers\.\([^]]*\)\][[:space:]]*$/\1/p' "$config")
        COMPREPLY=($(compgen -W "$servers" -- "$cur"))
        return
        ;;
    --timeout | --hello-timeout | --retry | --token | --tls-pin)
        return
        ;;
    esac

    local command="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        list | ls | stat | get | put | rm | mv | rename | mkdir | digest | stats | help)
            command=${COMP_WORDS[i]}
            break
            ;;
        -s | --server | --hash | --timeout | --hello-timeout | --retry | --token | --token-file | --tls-ca | --tls-pin)
            ((i++))
            ;;
        esac
    done

    if [[ $cur == -* ]]; then
        local flags=$global_flags
        case $command in
        get) flags+=" --resume --no-resume -o --output -C --directory -r --recursive -p --preserve -n --no-clobber --skip-identical" ;;
        put) flags+=" --resume --no-resume --as -C --directory -r --recursive -p --preserve -n --no-clobber --skip-identical" ;;
        list | ls | rm) flags+=" -r --recursive" ;;
        mv | rename) flags+=" --replace" ;;
        mkdir) flags+=" -p --parents" ;;
        esac
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
        return
    fi
    case $command in
    "")
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        ;;
    help)
        ((COMP_CWORD == i + 1)) && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        ;;
    get | stat | list | ls | rm | mv | rename | mkdir | digest)
        _ferry_remote_paths
        ;;
    put)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
        ;;
    esac
}

complete -F _ferry ferry
