import json, os, sys, collections
c=collections.Counter(); docs=collections.Counter()
for root,_,fs in os.walk(sys.argv[1]):
  for f in fs:
    if not f.endswith('.json'): continue
    d=json.load(open(os.path.join(root,f)))
    v=str(d.get('openapi',''))
    if not v.startswith('3.0'): continue
    seen=set()
    def w(x, parent_key=None):
        if isinstance(x,dict):
            if parent_key!='properties':
                if isinstance(x.get('exclusiveMinimum'),bool) or isinstance(x.get('exclusiveMaximum'),bool): seen.add('exclusiveMin/Max boolean')
                if isinstance(x.get('type'),list): seen.add('type array (invalid in 3.0)')
                if x.get('nullable') is True and 'type' not in x: seen.add('nullable without type')
                if x.get('nullable') is True and isinstance(x.get('enum'),list) and None not in x['enum']: seen.add('nullable+enum without null')
                if '$ref' in x and len(x)>1: seen.add('$ref with siblings')
                if 'discriminator' in x: seen.add('discriminator')
                if x.get('readOnly') is True: seen.add('readOnly')
                if x.get('writeOnly') is True: seen.add('writeOnly')
                if x.get('type')=='file': seen.add("type: file")
            for k,y in x.items(): w(y,k)
        elif isinstance(x,list):
            for y in x: w(y)
    w(d); docs['3.0 docs']+=1
    for s in seen: c[s]+=1
print(docs, c.most_common())
