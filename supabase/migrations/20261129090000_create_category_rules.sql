-- Programme suggestions for products: shipped keyword rules, a practice's own rules
-- (which win), the suggestion on product creation, and the admin functions that manage
-- rules and programmes.
-- Replaces private.upsert_product (same signature): a new product now gets a suggested
-- programme, applied at once only when the practice turned on auto_apply_suggestions.

-- ---------------------------------------------------------------------------
-- Shipped rules: keyword -> programme by name (every practice is seeded with these names)
-- ---------------------------------------------------------------------------
create table app.default_category_rules (
    keyword text primary key check (keyword = lower(trim(keyword)) and length(keyword) > 0),
    category_name text not null
);
comment on table app.default_category_rules is
'Shipped keyword rules: a product whose name contains keyword is suggested the programme named category_name.';

insert into app.default_category_rules (keyword, category_name)
values
('testosterone', 'TRT'),
('cypionate', 'TRT'),
('enanthate', 'TRT'),
('enclomiphene', 'TRT'),
('gonadorelin', 'TRT'),
('hcg', 'TRT'),
('anastrozole', 'TRT'),
('semaglutide', 'Weight Loss'),
('tirzepatide', 'Weight Loss'),
('retatrutide', 'Weight Loss'),
('phentermine', 'Weight Loss'),
('bpc-157', 'Peptides'),
('tb-500', 'Peptides'),
('sermorelin', 'Peptides'),
('ipamorelin', 'Peptides'),
('cjc-1295', 'Peptides'),
('nad+', 'Peptides'),
('glutathione', 'Peptides'),
('sildenafil', 'ED'),
('tadalafil', 'ED'),
('pt-141', 'ED'),
('trimix', 'ED');

alter table app.default_category_rules enable row level security;
grant select on app.default_category_rules to authenticated;

create policy default_category_rules_select on app.default_category_rules
for select to authenticated
using (true);

-- ---------------------------------------------------------------------------
-- A practice's rules: map a keyword to one of its programmes, or (category_id null)
-- suppress a shipped keyword.
-- ---------------------------------------------------------------------------
create table app.category_rules (
    id uuid primary key default gen_random_uuid(),
    practice_id uuid not null references app.practices (id) on delete cascade,
    keyword text not null check (keyword = lower(trim(keyword)) and length(keyword) > 0),
    category_id uuid,
    created_by uuid default auth.uid() references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    unique (practice_id, keyword),
    foreign key (practice_id, category_id) references app.categories (practice_id, id) on delete cascade
);
create index category_rules_category_id_idx on app.category_rules (category_id) where category_id is not null;
comment on table app.category_rules is
'A practice''s keyword rules; they win over shipped ones. A null category_id suppresses a shipped keyword.';

alter table app.category_rules enable row level security;
grant select on app.category_rules to authenticated;
grant insert (practice_id, keyword, category_id), update (category_id), delete on app.category_rules
to authenticated;

create policy category_rules_select on app.category_rules
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

create policy category_rules_insert on app.category_rules
for insert to authenticated
with check (practice_id = any((select private.current_admin_practice_ids())::uuid[]));

create policy category_rules_update on app.category_rules
for update to authenticated
using (practice_id = any((select private.current_admin_practice_ids())::uuid[]))
with check (practice_id = any((select private.current_admin_practice_ids())::uuid[]));

create policy category_rules_delete on app.category_rules
for delete to authenticated
using (practice_id = any((select private.current_admin_practice_ids())::uuid[]));

-- ---------------------------------------------------------------------------
-- The suggestion: the longest matching practice rule; else the longest matching shipped
-- rule the practice has not overridden or suppressed and whose programme name exists.
-- ---------------------------------------------------------------------------
create function private.suggest_category(p_practice_id uuid, p_product_name text)
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
    with matches as (
        select r.category_id, length(r.keyword) as len, r.keyword, 1 as tier
        from app.category_rules as r
        where r.practice_id = p_practice_id
            and strpos(private.name_key(p_product_name), r.keyword) > 0
        union all
        select c.id, length(d.keyword), d.keyword, 2
        from app.default_category_rules as d
        inner join app.categories as c
            on c.practice_id = p_practice_id
            and c.kind = 'programme'
            and lower(c.name) = lower(d.category_name)
        where strpos(private.name_key(p_product_name), d.keyword) > 0
            and not exists (
                select from app.category_rules as o
                where o.practice_id = p_practice_id and o.keyword = d.keyword
            )
    )
    select m.category_id
    from matches as m
    where m.category_id is not null
    order by m.tier, m.len desc, m.keyword
    limit 1
$$;
comment on function private.suggest_category(uuid, text) is
'Programme suggested for a product name by the practice''s rules, else the shipped ones; null if none.';

-- Same signature and behaviour as before, plus the suggestion on creation.
create or replace function private.upsert_product(p_practice_id uuid, p_name text)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid;
    v_name text := coalesce(nullif(trim(p_name), ''), 'Unnamed product');
    v_suggested uuid;
    v_auto boolean;
begin
    select id into v_id from app.products
    where practice_id = p_practice_id
        and name_key = private.name_key(v_name);
    if v_id is null then
        v_suggested := private.suggest_category(p_practice_id, v_name);
        select p.auto_apply_suggestions into v_auto from app.practices as p where p.id = p_practice_id;
        insert into app.products (practice_id, name, category_id, suggested_category_id)
        values (
            p_practice_id, v_name,
            case
                when coalesce(v_auto, false) and v_suggested is not null then v_suggested
                else private.uncategorized_id(p_practice_id)
            end,
            v_suggested
        )
        on conflict (practice_id, name_key) do nothing
        returning id into v_id;
        if v_id is null then
            select id into v_id from app.products
            where practice_id = p_practice_id
                and name_key = private.name_key(v_name);
        end if;
    end if;
    return v_id;
end
$$;
comment on function private.upsert_product(uuid, text) is
'Find or create a product of a practice; a new product gets a suggested programme and starts '
'Uncategorized unless the practice auto-applies suggestions.';

-- After a rule change: recompute the suggestion of every product nobody confirmed yet.
-- A trigger (definer): who may change rules is decided by the policies of app.category_rules.
create function private.refresh_product_suggestions()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_practice_id uuid := coalesce(new.practice_id, old.practice_id);
begin
    update app.products as p
    set suggested_category_id = private.suggest_category(p.practice_id, p.name),
        updated_at = now()
    where p.practice_id = v_practice_id
        and not p.category_confirmed
        and p.suggested_category_id is distinct from private.suggest_category(p.practice_id, p.name);
    return null;
end
$$;
comment on function private.refresh_product_suggestions() is
'Trigger: recompute the suggestions of the practice''s unconfirmed products after a rule change.';

create trigger category_rules_refresh_suggestions
after insert or update or delete on app.category_rules
for each row execute function private.refresh_product_suggestions();

-- ---------------------------------------------------------------------------
-- Admin API: rules and programmes (invoker; RLS on app.category_rules and
-- app.categories decides who may write).
-- ---------------------------------------------------------------------------
create function api.set_category_rule(p_practice_id uuid, p_keyword text, p_category_id uuid)
returns uuid
language plpgsql
security invoker
set search_path = ''
as $$
declare
    v_id uuid;
    v_keyword text := lower(trim(p_keyword));
begin
    if coalesce(v_keyword, '') = '' then
        raise exception 'keyword is required' using errcode = '22023';
    end if;
    insert into app.category_rules (practice_id, keyword, category_id)
    values (p_practice_id, v_keyword, p_category_id)
    on conflict (practice_id, keyword) do update set category_id = excluded.category_id
    returning id into v_id;
    return v_id;
end
$$;
comment on function api.set_category_rule(uuid, text, uuid) is
'Owners/admins: map a keyword to one of the practice''s programmes (null category: suppress a shipped keyword).';
grant execute on function api.set_category_rule(uuid, text, uuid) to authenticated;

create function api.delete_category_rule(p_practice_id uuid, p_keyword text)
returns boolean
language plpgsql
security invoker
set search_path = ''
as $$
declare
    v_found boolean;
begin
    delete from app.category_rules
    where practice_id = p_practice_id and keyword = lower(trim(p_keyword))
    returning true into v_found;
    return coalesce(v_found, false);
end
$$;
comment on function api.delete_category_rule(uuid, text) is
'Owners/admins: remove a practice keyword rule (the shipped rule, if any, applies again).';
grant execute on function api.delete_category_rule(uuid, text) to authenticated;

create function api.add_category(p_practice_id uuid, p_name text, p_sort_order integer default 100)
returns uuid
language sql
security invoker
set search_path = ''
as $$
    insert into app.categories (practice_id, name, sort_order)
    values (p_practice_id, trim(p_name), coalesce(p_sort_order, 100))
    returning id
$$;
comment on function api.add_category(uuid, text, integer) is 'Owners/admins: add a programme to a practice.';
grant execute on function api.add_category(uuid, text, integer) to authenticated;

create function api.rename_category(p_category_id uuid, p_name text)
returns void
language plpgsql
security invoker
set search_path = ''
as $$
begin
    update app.categories set name = trim(p_name) where id = p_category_id;
    if not found then
        -- RLS hides other practices' programmes and Uncategorized is not updatable
        raise exception 'programme not found, not yours to rename, or Uncategorized'
        using errcode = '42501';
    end if;
end
$$;
comment on function api.rename_category(uuid, text) is
'Owners/admins: rename a programme (Uncategorized cannot be renamed).';
grant execute on function api.rename_category(uuid, text) to authenticated;

create view api.category_rules with (security_invoker = true) as
select
    r.practice_id,
    r.keyword,
    r.category_id,
    c.name as category_name,
    'practice' as origin
from app.category_rules as r
left join app.categories as c on r.category_id = c.id
union all
select
    p.id as practice_id,
    d.keyword,
    c.id as category_id,
    c.name as category_name,
    'shipped' as origin
from app.practices as p
cross join app.default_category_rules as d
left join app.categories as c
    on p.id = c.practice_id and c.kind = 'programme' and lower(c.name) = lower(d.category_name)
where not exists (
        select from app.category_rules as o where o.practice_id = p.id and o.keyword = d.keyword
    );
comment on view api.category_rules is
'Keyword rules in force per practice: its own (null category = suppressed) and the shipped ones it kept.';
grant select on api.category_rules to authenticated;
