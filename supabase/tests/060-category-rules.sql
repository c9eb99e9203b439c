-- Programme suggestions: shipped rules, practice rules (override, suppress), auto-apply, and
-- who may manage rules and programmes.
begin;
\ir _helpers.psql

select plan(24);

select tests.create_practice('Clinic A', 'clinic-a') as practice_a \gset
select tests.create_practice('Clinic B', 'clinic-b') as practice_b \gset
select tests.create_user('admin-a@example.test') as admin_a \gset
select tests.create_user('staff-a@example.test') as staff_a \gset
select tests.create_user('admin-b@example.test') as admin_b \gset
select tests.add_member(:'practice_a', :'admin_a', 'admin');
select tests.add_member(:'practice_a', :'staff_a', 'staff');
select tests.add_member(:'practice_b', :'admin_b', 'admin');

-- shipped rules
select is(
    private.suggest_category(:'practice_a', 'Testosterone Cypionate 200mg'),
    tests.category_id(:'practice_a', 'TRT'), 'shipped rule: testosterone -> TRT'
);
select is(
    private.suggest_category(:'practice_a', 'NAD+ injection'),
    tests.category_id(:'practice_a', 'Peptides'), 'shipped rule with a symbol: nad+ -> Peptides'
);
select is(
    private.suggest_category(:'practice_a', 'Compounded TIRZEPATIDE'),
    tests.category_id(:'practice_a', 'Weight Loss'), 'matching is case-insensitive'
);
select is(private.suggest_category(:'practice_a', 'Office visit'), null::uuid, 'no rule: no suggestion');

-- a new product: suggestion kept, still Uncategorized
select private.upsert_product(:'practice_a', 'Sildenafil 20mg') as sild \gset
select results_eq(
    format($$ select c.kind, p.suggested_category_id, p.category_confirmed
        from app.products as p join app.categories as c on c.id = p.category_id where p.id = %L $$, :'sild'),
    format($$ values ('uncategorized'::text, %L::uuid, false) $$, tests.category_id(:'practice_a', 'ED')),
    'a new product stays Uncategorized with its suggestion'
);
select is(
    private.upsert_product(:'practice_a', '  sildenafil   20MG '), :'sild'::uuid,
    'upsert_product still finds a product by its name key'
);

-- auto-apply
update app.practices set auto_apply_suggestions = true where id = :'practice_b';
select private.upsert_product(:'practice_b', 'Semaglutide 1mg') as sema_b \gset
select is(
    (select category_id from app.products where id = :'sema_b'),
    tests.category_id(:'practice_b', 'Weight Loss'), 'auto_apply_suggestions applies the suggestion at once'
);
select private.upsert_product(:'practice_b', 'Gift card') as gift_b \gset
select is(
    (
        select c.kind from app.products as p inner join app.categories as c on p.category_id = c.id
        where p.id = :'gift_b'
    ),
    'uncategorized', 'auto-apply without a suggestion: Uncategorized'
);

-- admin manages rules: override, suppress, new keyword
select tests.authenticate_as(:'admin_a');
select lives_ok(
    format(
        $$ select api.set_category_rule(%L, 'Sildenafil', %L) $$, :'practice_a',
        tests.category_id(:'practice_a', 'Other')
    ),
    'an admin maps a shipped keyword to another programme'
);
select lives_ok(
    format($$ select api.set_category_rule(%L, 'hcg', null) $$, :'practice_a'),
    'an admin suppresses a shipped keyword'
);
select lives_ok(
    format(
        $$ select api.set_category_rule(%L, 'vitamin', %L) $$, :'practice_a',
        tests.category_id(:'practice_a', 'Peptides')
    ),
    'an admin adds a keyword'
);
select api.add_category(:'practice_a', 'Hair') as hair \gset
select lives_ok(
    format($$ select api.rename_category(%L, 'Hair loss') $$, :'hair'), 'an admin renames a programme'
);
select throws_ok(
    format($$ select api.rename_category(%L, 'Misc') $$, tests.category_id(:'practice_a', 'Uncategorized')),
    '42501', null, 'Uncategorized cannot be renamed'
);
select throws_ok(
    format($$ select api.set_category_rule(%L, 'x', null) $$, :'practice_b'),
    '42501', null, 'an admin of A cannot write rules of B'
);
select tests.clear_authentication();

select is(
    (select suggested_category_id from app.products where id = :'sild'),
    tests.category_id(:'practice_a', 'Other'), 'a rule change refreshes suggestions of unconfirmed products'
);
select is(
    private.suggest_category(:'practice_a', 'HCG 5000iu'), null::uuid, 'a suppressed shipped keyword suggests nothing'
);
select is(
    private.suggest_category(:'practice_a', 'Vitamin B12'), tests.category_id(:'practice_a', 'Peptides'),
    'a practice keyword suggests its programme'
);
select is(
    private.suggest_category(:'practice_b', 'HCG 5000iu'), tests.category_id(:'practice_b', 'TRT'),
    'practice rules do not leak into other practices'
);

-- staff and anon
select tests.authenticate_as(:'staff_a');
select throws_ok(
    format($$ select api.set_category_rule(%L, 'biotin', null) $$, :'practice_a'),
    '42501', null, 'staff cannot manage rules'
);
select throws_ok(
    format($$ select api.add_category(%L, 'Skin') $$, :'practice_a'), '42501', null, 'staff cannot add programmes'
);
select throws_ok(
    format($$ select api.rename_category(%L, 'Skin') $$, :'hair'), '42501', null, 'staff cannot rename programmes'
);
select is(
    (select count(*) from api.category_rules where practice_id = :'practice_a' and origin = 'practice'),
    3::bigint, 'staff read their practice''s rules'
);
select tests.authenticate_as(:'admin_b');
select is(
    (select count(*) from api.category_rules where practice_id = :'practice_a'), 0::bigint,
    'a member of B sees no rule of A'
);
select tests.authenticate_as_anon();
select throws_ok(
    format($$ select api.set_category_rule(%L, 'biotin', null) $$, :'practice_a'),
    '42501', null, 'anon cannot call the rule API'
);
select tests.clear_authentication();

select * from finish();
rollback;
