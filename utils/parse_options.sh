# Source this after setting the defaults of a script's options:
#   . utils/parse_options.sh || exit 1
# Kaldi's semantics: options come first, as "--name value" (never --name=value); "--name" sets the
# shell variable "name" with "-" read as "_"; the variable must already have a default (an unknown
# option is an error); an option whose default is true/false only takes true or false;
# --help prints $help_message; "--config FILE" reads "name=value" lines (# comments allowed).
# Unlike Kaldi's, --config reads the file as data: it is never run as shell code.

_po_die() { echo "$0: $*" >&2; exit 1; }

_po_set() {  # name value origin
  local name=${1//-/_} value=$2 origin=$3 old
  [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || _po_die "invalid option name '$1' ($origin)"
  [[ -v $name ]] || _po_die "invalid option --$1 ($origin)"
  old=${!name}
  if [[ $old == true || $old == false ]] && [[ $value != true && $value != false ]]; then
    _po_die "expected \"true\" or \"false\": --$1 $value ($origin)"
  fi
  printf -v "$name" '%s' "$value"
}

_po_config() {  # file
  local line lineno=0 name value
  [ -r "$1" ] || _po_die "cannot read config file $1"
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    line=${line%%#*}
    line=$(printf '%s' "$line" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
    [ -z "$line" ] && continue
    line=${line#--}
    [[ $line == *=* ]] || _po_die "$1:$lineno: expected name=value, got '$line'"
    name=${line%%=*}; value=${line#*=}
    value=${value#\"}; value=${value%\"}
    _po_set "$name" "$value" "$1:$lineno"
  done < "$1"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      if [ -n "${help_message:-}" ]; then printf '%s\n' "$help_message" >&2; else echo "No help found." >&2; fi
      exit 0 ;;
    --*=*) _po_die "options to scripts must be of the form --name value, got '$1'" ;;
    --config) [ $# -ge 2 ] || _po_die "--config needs a file"; _po_config "$2"; shift 2 ;;
    --*) [ $# -ge 2 ] || _po_die "option $1 needs a value"; _po_set "${1#--}" "$2" "command line"; shift 2 ;;
    *) break ;;
  esac
done
unset -f _po_die _po_set _po_config
true
